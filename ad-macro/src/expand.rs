//! The whole expansion on `proc_macro2` tokens, so tests can run it without rustc.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::{analyse, attr, emit, lower};

/// Expands `#[gradient(attr)] item`. Never panics: invalid input gives `compile_error!`s, and the
/// original item is always kept so that one mistake gives one error.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    match std::panic::catch_unwind(|| expand_inner(attr, item.clone())) {
        Ok(ts) => ts,
        Err(_) => {
            let msg =
                "internal error in #[gradient]: please report this function to the `ad` developers";
            quote!(#item ::core::compile_error!(#msg);)
        }
    }
}

fn expand_inner(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let what = match syn::parse2::<syn::Item>(item.clone()) {
                Ok(syn::Item::Struct(s)) => ("a struct", s.ident.span()),
                Ok(syn::Item::Enum(e)) => ("an enum", e.ident.span()),
                Ok(syn::Item::Impl(i)) => ("an impl block", i.impl_token.span),
                Ok(syn::Item::Mod(m)) => ("a module", m.ident.span()),
                Ok(syn::Item::Trait(t)) => ("a trait", t.ident.span()),
                Ok(syn::Item::Const(c)) => ("a const", c.ident.span()),
                Ok(syn::Item::Static(s)) => ("a static", s.ident.span()),
                Ok(syn::Item::Type(t)) => ("a type alias", t.ident.span()),
                Ok(other) => ("this item", other.span()),
                Err(_) => ("this", item.span()),
            };
            let msg = format!(
                "#[gradient] applies to a function (`fn f(x: f64, ...) -> f64 {{ ... }}`), not to {}",
                what.0
            );
            let err = syn::Error::new(what.1, msg).into_compile_error();
            return quote!(#item #err);
        }
    };
    let mut cx = Errors::default();
    let attr = match attr::parse(attr) {
        Ok(a) => a,
        Err(e) => {
            cx.push(e);
            attr::Attr::default()
        }
    };
    let func = lower::lower(&item_fn, &attr, &mut cx);
    if let Some(err) = cx.combined() {
        let err = err.into_compile_error();
        return quote!(#item #err);
    }
    let Some(func) = func else {
        return item;
    };
    let facts = analyse::analyse(&func);
    let grad = emit::emit(&item_fn, &func, &facts);
    quote!(#item #grad)
}

#[cfg(test)]
pub(crate) fn pretty(attr: TokenStream, item: TokenStream) -> String {
    let out = expand(attr, item);
    match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => out.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore]
    fn show() {
        let src = std::env::var("AD_SHOW").unwrap_or_default();
        let item: TokenStream = src.parse().unwrap();
        println!("{}", pretty(quote!(), item));
    }
}
