//! Errors are collected, not returned one at a time: a body with three unsupported constructs
//! reports all three (as serde's `Ctxt` does).

use std::fmt::Display;

use proc_macro2::Span;

#[derive(Default)]
pub struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    pub fn error(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// An error underlining all of `tokens` (a span on stable Rust covers one token only).
    pub fn spanned(&mut self, tokens: impl quote::ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn push(&mut self, e: syn::Error) {
        self.errors.push(e);
    }

    pub fn count(&self) -> usize {
        self.errors.len()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All errors combined into one, if there were any.
    pub fn combined(&mut self) -> Option<syn::Error> {
        let mut iter = std::mem::take(&mut self.errors).into_iter();
        let mut first = iter.next()?;
        for e in iter {
            first.combine(e);
        }
        Some(first)
    }
}
