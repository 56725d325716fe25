//! Measurement-only harness of benches/build-cost (never part of the `ad` build). gen.py compiles
//! it together with ad-macro's own modules (unchanged, included by `#[path]`) as an ordinary
//! binary, so `expand::expand` runs outside rustc: no proc-macro bridge, proc-macro2's fallback
//! implementation. Each input file holds one function with its `#[ad::gradient(...)]`
//! attribute; the attribute is removed and its arguments are passed to the macro, as rustc does.
//!
//! `macro-harness expand <out-dir> <fn.rs>...`: writes the expansion, formatted by prettyplease,
//!     to `<out-dir>/<stem>.rs` and prints `SIZE <stem> <part> <lines> <bytes>` for the parts
//!     `original` (the echoed function), `grad` (`<name>_grad`) and `companion` (the rest).
//! `macro-harness time <reps> <fn.rs>...`: expands each function `<reps>` times and prints
//!     `TIME <stem> min_ms=<..> median_ms=<..>`.

use proc_macro2::TokenStream;
use quote::quote;
use std::path::Path;

/// (attribute arguments, item without the attribute), as the macro receives them.
fn input(path: &str) -> (TokenStream, TokenStream) {
    let src = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut item: syn::ItemFn = syn::parse_str(&src).unwrap_or_else(|e| panic!("{path}: {e}"));
    let pos = item
        .attrs
        .iter()
        .position(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "gradient")
        })
        .unwrap_or_else(|| panic!("{path}: no #[gradient] attribute"));
    let args = match item.attrs.remove(pos).meta {
        syn::Meta::List(l) => l.tokens,
        _ => TokenStream::new(),
    };
    // Through a string, like the tokens rustc hands to the macro.
    (args, quote!(#item).to_string().parse().unwrap())
}

fn stem(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn expand_to_file(out_dir: &str, path: &str) {
    let (args, item) = input(path);
    let name = syn::parse2::<syn::ItemFn>(item.clone())
        .unwrap()
        .sig
        .ident
        .to_string();
    let out = crate::expand::expand(args, item);
    let text = out.to_string();
    assert!(
        !text.contains("compile_error"),
        "{path}: the macro reported an error:\n{text}"
    );
    let file: syn::File = syn::parse2(out).unwrap();
    let whole = prettyplease::unparse(&file);
    std::fs::write(
        Path::new(out_dir).join(format!("{}.rs", stem(path))),
        &whole,
    )
    .unwrap();
    let part_of = |it: &syn::Item| match it {
        syn::Item::Fn(f) if f.sig.ident == name => "original",
        syn::Item::Fn(f) if f.sig.ident == format!("{name}_grad") => "grad",
        _ => "companion",
    };
    for part in ["original", "grad", "companion"] {
        let items: Vec<syn::Item> = file
            .items
            .iter()
            .filter(|it| part_of(it) == part)
            .cloned()
            .collect();
        let text = if items.is_empty() {
            String::new()
        } else {
            prettyplease::unparse(&syn::File {
                shebang: None,
                attrs: vec![],
                items,
            })
        };
        println!(
            "SIZE {} {part} {} {}",
            stem(path),
            text.lines().count(),
            text.len()
        );
    }
}

fn time(reps: usize, path: &str) {
    let (args, item) = input(path);
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = std::time::Instant::now();
        let out = crate::expand::expand(args.clone(), item.clone());
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        drop(std::hint::black_box(out));
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "TIME {} min_ms={:.3} median_ms={:.3}",
        stem(path),
        ms[0],
        ms[ms.len() / 2]
    );
}

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("expand") if args.len() >= 3 => {
            args[2..].iter().for_each(|p| expand_to_file(&args[1], p))
        }
        Some("time") if args.len() >= 3 => {
            let reps = args[1].parse().expect("reps");
            args[2..].iter().for_each(|p| time(reps, p))
        }
        _ => {
            eprintln!("usage: macro-harness expand <out-dir> <fn.rs>... | time <reps> <fn.rs>...");
            std::process::exit(2)
        }
    }
}
