//! The attribute's options: `#[gradient]` or `#[gradient(wrt(a, b))]`.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Ident, Token};

#[derive(Default, Debug)]
pub struct Attr {
    /// The parameters named in `wrt(...)`, or `None` for "every float parameter".
    pub wrt: Option<Vec<Ident>>,
}

impl Parse for Attr {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut attr = Attr::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            if key != "wrt" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown option `{key}`: the only option is `wrt(param, ...)`"),
                ));
            }
            if attr.wrt.is_some() {
                return Err(syn::Error::new(key.span(), "`wrt` is given twice"));
            }
            let content;
            syn::parenthesized!(content in input);
            let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
            if names.is_empty() {
                return Err(syn::Error::new(
                    key.span(),
                    "`wrt()` names no parameter: name at least one float parameter",
                ));
            }
            attr.wrt = Some(names.into_iter().collect());
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(attr)
    }
}

pub fn parse(tokens: TokenStream) -> syn::Result<Attr> {
    Attr::parse.parse2(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn parses_wrt() {
        let a = parse(quote!(wrt(x, y))).unwrap();
        let names: Vec<String> = a.wrt.unwrap().iter().map(|i| i.to_string()).collect();
        assert_eq!(names, ["x", "y"]);
        assert!(parse(quote!()).unwrap().wrt.is_none());
    }

    #[test]
    fn refuses_unknown_options() {
        let err = parse(quote!(with(x))).unwrap_err();
        assert!(err.to_string().contains("unknown option `with`"));
        assert!(parse(quote!(wrt())).is_err());
        assert!(parse(quote!(wrt(x) wrt(y))).is_err());
    }
}
