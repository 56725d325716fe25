//! The `#[gradient]` attribute of the `ad` crate. See the `ad` crate for documentation.
//!
//! Pipeline (one module per stage): [`attr`] parses the options, [`lower`] turns the function
//! into the IR of [`ir`], [`select`] rewrites selection loops (a running maximum), [`analyse`] computes activity and what the reverse sweep must keep,
//! [`emit`] writes the forward sweep and [`adjoint`] the reverse sweep.

mod adjoint;
mod analyse;
mod attr;
mod emit;
mod errors;
mod expand;
mod fuse;
mod interchange;
mod intrinsics;
mod ir;
mod jam;
mod lower;
#[cfg(test)]
mod robustness;
mod select;
mod window;

use proc_macro::TokenStream;

/// Emits `<name>_grad` beside the function: its value and gradient from one reverse sweep.
///
/// See the documentation of the `ad` crate for the supported syntax and the API.
#[proc_macro_attribute]
pub fn gradient(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
