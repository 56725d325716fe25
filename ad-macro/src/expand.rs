//! The whole expansion on `proc_macro2` tokens, so tests can run it without rustc.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::{analyse, attr, emit, interchange, lower, select};

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

/// The stages, on a stack large enough for deeply nested input (256 MiB, reserved but only
/// touched as the input needs it; syn and the stages recurse on nesting).
pub(crate) fn expand_inner(attr: TokenStream, item: TokenStream) -> TokenStream {
    stacker::grow(256 << 20, || expand_stages(attr, item))
}

fn expand_stages(attr: TokenStream, item: TokenStream) -> TokenStream {
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
    // Analyse even after errors, so that every problem of the body is reported at once.
    let facts = func.as_ref().map(|f| {
        let facts = analyse::analyse(f);
        analyse::check_inactive_code(f, &facts, &mut cx);
        facts
    });
    if let Some(err) = cx.combined() {
        let err = err.into_compile_error();
        return quote!(#item #err);
    }
    let (Some(mut func), Some(mut facts)) = (func, facts) else {
        return item;
    };
    if select::rewrite(&mut func, &facts.active) {
        facts = analyse::analyse(&func);
    }
    if interchange::rewrite(&mut func, &facts.active) {
        facts = analyse::analyse(&func);
    }
    let name = format_ident!("{}_grad", item_fn.sig.ident);
    let grad = emit::emit(&item_fn, &func, &facts, &name, false);
    let companion_name = emit::companion_name(&item_fn.sig.ident);
    let companion = emit::companion(&item_fn, &func, &facts, &companion_name, &name);
    quote!(#item #grad #companion)
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
    use expect_test::expect_file;

    // Expansion snapshots: what `f_grad` looks like for a few functions. Regenerate with
    // `UPDATE_EXPECT=1 cargo test -p ad-macro` and read the diff.

    /// The lecture's example: straight-line code, no tape, each rule applied once.
    #[test]
    fn expansion_lecture() {
        let out = pretty(
            quote!(),
            quote! {
                fn f(x: f64, y: f64) -> f64 {
                    x.powi(3) * (x + 3.0 * y)
                }
            },
        );
        expect_file!["../tests/expansions/lecture.rs"].assert_eq(&out);
    }

    /// Extended Rosenbrock: a fused loop (each iteration's reverse right after its forward, the
    /// adjoints of `x[i + 1]` carried in a register); nothing is taped.
    #[test]
    fn expansion_rosenbrock() {
        let out = pretty(
            quote!(),
            quote! {
                fn rosen(x: &[f64]) -> f64 {
                    let mut s = 0.0;
                    for i in 0..x.len() - 1 {
                        let a = x[i + 1] - x[i] * x[i];
                        let b = 1.0 - x[i];
                        s += 100.0 * a * a + b * b;
                    }
                    s
                }
            },
        );
        assert!(!out.contains("Tape"), "Rosenbrock must not tape:\n{out}");
        expect_file!["../tests/expansions/rosenbrock.rs"].assert_eq(&out);
    }

    /// A nonlinear recurrence: exactly one value of `x` is taped per step, written into a slot
    /// per iteration of a buffer sized once before the loop.
    #[test]
    fn expansion_logistic() {
        let out = pretty(
            quote!(),
            quote! {
                fn logistic(x0: f64, r: f64, steps: usize) -> f64 {
                    let mut x = x0;
                    for _ in 0..steps {
                        x = r * x * (1.0 - x);
                    }
                    x
                }
            },
        );
        assert_eq!(out.matches(".slots(").count(), 1, "{out}");
        assert!(!out.contains(".push("), "{out}");
        expect_file!["../tests/expansions/logistic.rs"].assert_eq(&out);
    }

    /// Branches and an early return: decisions are local bools, no tape.
    #[test]
    fn expansion_branches() {
        let out = pretty(
            quote!(),
            quote! {
                fn branchy(x: f64, y: f64) -> f64 {
                    if x > y {
                        return x * y;
                    }
                    let z = if y > 0.0 { y.sin() } else { y.cos() };
                    x * z
                }
            },
        );
        assert!(!out.contains("Tape"), "{out}");
        expect_file!["../tests/expansions/branches.rs"].assert_eq(&out);
    }

    /// A replayed loop overwriting a buffer it saves anyway reads the stored `tanh` back from
    /// the element before restoring it: `tanh` in the forward sweep, none in the reverse.
    #[test]
    fn saved_buffers_give_their_results_back() {
        let out = pretty(
            quote!(),
            quote! {
                fn f(x: &[f64]) -> f64 {
                    let mut g = vec![0.0; 3];
                    let mut s = 0.5;
                    for t in 0..x.len() {
                        for i in 0..3 {
                            g[i] = (x[t] * s).tanh();
                        }
                        for i in 0..3 {
                            s = (s + g[i]).sin();
                        }
                    }
                    s
                }
            },
        );
        assert!(out.contains("g_2_tape"), "{out}");
        // The function as written, and the forward sweep.
        assert_eq!(out.matches(".tanh()").count(), 2, "{out}");
    }

    /// In a loop that replays, an expensive intermediate result the reverse reads (`tanh`
    /// below a product) is pushed by the forward sweep and popped by the reverse one, not
    /// evaluated a third time.
    #[test]
    fn replayed_loops_keep_expensive_intermediates() {
        let out = pretty(
            quote!(),
            quote! {
                fn f(x: &[f64]) -> f64 {
                    let mut s = 0.5;
                    for i in 0..x.len() {
                        s = s * (x[i] * s).tanh();
                    }
                    s
                }
            },
        );
        assert_eq!(out.matches("__temps.push(").count(), 1, "{out}");
        assert_eq!(out.matches("__temps.pop()").count(), 1, "{out}");
        // The function as written, and the forward sweep.
        assert_eq!(out.matches(".tanh()").count(), 2, "{out}");
    }

    /// An inner loop of a fused loop whose reverse commutes and reads nothing the rest of the
    /// body changes runs its reverse in the same pass (`Emitter::merged_loops`): one loop over
    /// `j`, and nothing kept on `__temps` for it. When the body after it reads its sum, it stays
    /// two loops.
    #[test]
    fn pairwise_inner_loops_are_merged() {
        let expand = |target: TokenStream, after: TokenStream| {
            let out = pretty(
                quote!(),
                quote! {
                    fn f(x: &[f64]) -> f64 {
                        let mut e = 0.0;
                        for i in 0..x.len() {
                            let mut s = 0.0;
                            for j in 0..i {
                                let d = x[i] - x[j];
                                #target += (d * d + 1.0).sqrt().tanh();
                            }
                            e += #after;
                        }
                        e
                    }
                },
            );
            (
                out.matches("for j_").count(),
                out.contains("__temps.push("),
                out,
            )
        };
        // The pairs' terms summed into `e` itself: merged.
        let (loops, pushes, out) = expand(quote!(e), quote!(0.0 * s));
        assert_eq!((loops, pushes), (1, false), "{out}");
        // Into `s`, used linearly after the inner loop: merged, `s`'s adjoint seeded before it
        // (`Emitter::seed`).
        let (loops, pushes, out) = expand(quote!(s), quote!(0.5 * x[i] * s));
        assert_eq!((loops, pushes), (1, false), "{out}");
        // Used non-linearly: two loops, `tanh` kept for the reverse.
        let (loops, pushes, out) = expand(quote!(s), quote!(s * s));
        assert_eq!((loops, pushes), (2, true), "{out}");
    }

    /// In a branch of a fused loop, `sin`'s partial (`cos θ`) is computed by the forward sweep
    /// beside the user's `θ.cos()` and kept in a local; the reverse, in its own branch, calls
    /// neither. At the loop's top level nothing is kept (the forward's values are in scope).
    #[test]
    fn branch_partials_of_sin_and_cos_are_kept() {
        let expand = |guard: TokenStream| {
            pretty(
                quote!(),
                quote! {
                    fn f(r: &[f64]) -> f64 {
                        let mut s = 0.0;
                        for i in 0..r.len() {
                            let t = r[i];
                            let y;
                            if #guard {
                                let c = t.cos();
                                let sn = t.sin();
                                y = c * sn;
                            } else {
                                y = t;
                            }
                            s += y;
                        }
                        s
                    }
                },
            )
        };
        let out = expand(quote!(t > 0.0));
        let rev = &out[out.find("fn f_grad").unwrap()..];
        assert_eq!(rev.matches("__kept").count(), 2 + 2 + 2, "{out}");
        assert_eq!(rev.matches("__r::sin(").count(), 1, "{out}");
        assert_eq!(rev.matches("__r::cos(").count(), 1, "{out}");
        assert!(!rev.contains("__temps"), "{out}");
        assert_eq!(rev.matches(".sin()").count(), 1, "{out}");
        assert_eq!(rev.matches(".cos()").count(), 1, "{out}");
    }

    /// A loop whose body declares a buffer first (`let mut h = vec![0.0; m];` per sample) is
    /// fused: no tape of buffers, no second loop; the adjoint takes the buffer's length in each
    /// iteration. Declared inside an inner loop, it is not (the outer loop replays).
    #[test]
    fn per_iteration_buffers_are_fused() {
        let expand = |inner: bool| {
            let decl = quote!(let mut h = vec![0.0; 3];);
            let (top, nested) = if inner {
                (quote!(), decl)
            } else {
                (decl, quote!())
            };
            pretty(
                quote!(),
                quote! {
                    fn f(x: &[f64]) -> f64 {
                        let mut s = 0.0;
                        for i in 0..x.len() {
                            #top
                            for k in 0..3 {
                                #nested
                                h[k] = (x[i] * k as f64).tanh();
                                s += h[k] * h[k];
                            }
                        }
                        s
                    }
                },
            )
        };
        let out = expand(false);
        let outer_loops = |out: &str| out.matches("for i_").count();
        assert_eq!(outer_loops(&out), 1, "{out}");
        assert!(
            !out.contains("_decls") && out.contains("_bar.fit("),
            "{out}"
        );
        let out = expand(true);
        assert_eq!(outer_loops(&out), 2, "{out}");
        assert!(
            out.contains("_decls") && !out.contains("_bar.fit("),
            "{out}"
        );
    }

    /// The store of an adjoint summed in a register, `w_bar.get_mut(j)`, goes through a window
    /// of the shadow taken before the loop, not a check per iteration.
    #[test]
    fn carried_adjoint_stores_go_through_windows() {
        let out = pretty(
            quote!(wrt(w)),
            quote! {
                fn f(w: &[f64], x: &[f64]) -> f64 {
                    let d = w.len();
                    let mut s = 0.0;
                    for i in 0..x.len() / d {
                        let mut p = 0.0;
                        for j in 0..d {
                            p += w[j] * x[i * d + j];
                        }
                        s += p.tanh();
                    }
                    s
                }
            },
        );
        assert!(!out.contains("w_1_bar.get_mut("), "{out}");
        assert!(out.contains("&mut w_1_bar[__s..__s + (hi_"), "{out}");
        assert!(out.contains(".get_mut(j_"), "{out}");
        // At a constant offset (`w[1 + j]`, the store `j.checked_add(1)..get_mut`) too.
        let out = pretty(
            quote!(wrt(w)),
            quote! {
                fn f(w: &[f64], x: &[f64]) -> f64 {
                    let mut s = 0.0;
                    for i in 0..x.len() / 3 {
                        let mut p = w[0];
                        for j in 0..3 {
                            p += w[1 + j] * x[i * 3 + j];
                        }
                        s += p.tanh();
                    }
                    s
                }
            },
        );
        assert!(!out.contains("checked_add"), "{out}");
        assert!(out.contains("let __s = 1 + lo_"), "{out}");
    }

    /// A sum down a column (`b[k * n + j]` in the loop over `j`) runs for every `j` at once,
    /// `j` innermost, in a buffer (`interchange.rs`); near misses stay as written: rows read
    /// along `k` (an MLP's `w[j * n + k]`), a triangular inner loop, a reset that reads the
    /// accumulator, or itself inside the sum, a sum that reads no memory.
    #[test]
    fn column_reductions_are_interchanged() {
        let body = |sum: TokenStream, reset: TokenStream, inner: TokenStream| {
            pretty(
                quote!(),
                quote! {
                    fn f(a: &[f64], b: &[f64], n: usize) -> f64 {
                        let mut s = 0.0;
                        let mut acc = 0.0;
                        for j in 0..n {
                            acc = #reset;
                            for k in #inner {
                                acc += #sum;
                            }
                            s += acc * acc;
                        }
                        s
                    }
                },
            )
        };
        let column = quote!(a[k] * b[k * n + j]);
        let out = body(column.clone(), quote!(0.0), quote!(0..n));
        assert!(out.contains("acc_v"), "{out}");
        let out = body(column.clone(), quote!(a[j] * 2.0), quote!(1..n));
        assert!(out.contains("acc_v"), "{out}");
        for (sum, reset, inner) in [
            (quote!(a[j * n + k] * b[k]), quote!(0.0), quote!(0..n)),
            (
                quote!(a[j * n + k] * b[k * n + j]),
                quote!(0.0),
                quote!(0..n),
            ),
            (column.clone(), quote!(0.0), quote!(0..j)),
            (column.clone(), quote!(acc * 0.5), quote!(0..n)),
            (quote!(a[k] * b[k * n + j] * acc), quote!(0.0), quote!(0..n)),
            (quote!(2.0 * (k + n * j) as f64), quote!(0.0), quote!(0..n)),
        ] {
            let out = body(sum.clone(), reset.clone(), inner.clone());
            assert!(!out.contains("acc_v"), "{sum} / {reset} / {inner}: {out}");
        }
    }

    /// An accumulator defined at the top of a replayed loop's body and touched nowhere else (a
    /// matrix product's `acc`) saves its final value after the inner loop, and the reverse
    /// iteration loads it first: the definition saves nothing and restores nothing. (The
    /// product `A Bᵀ`, along rows of both: `A B`, down columns of `B`, is interchanged,
    /// `interchange.rs`.)
    #[test]
    fn private_accumulators_save_their_final_value() {
        let out = pretty(
            quote!(),
            quote! {
                fn f(a: &[f64], b: &[f64], n: usize) -> f64 {
                    let mut s = 0.0;
                    for i in 0..n {
                        for j in 0..n {
                            let mut acc = 0.0;
                            for k in 0..n {
                                acc += a[i * n + k] * b[j * n + k];
                            }
                            s += acc * acc;
                        }
                    }
                    s
                }
            },
        );
        let save = out.find("acc_11_tape[(j_10 - lo_8) as usize] = acc_11;");
        let load = out.find("acc_11 = acc_11_tape[(j_10 - lo_8) as usize];");
        let (Some(save), Some(load)) = (save, load) else {
            panic!("no end save or load: {out}");
        };
        assert_eq!(
            out.matches("acc_11_tape[(j_10 - lo_8) as usize]").count(),
            2,
            "{out}"
        );
        // Forward: the definition, the inner loop, the save. Reverse: the load first.
        let def = out.find("acc_11 = 0.0;").expect("the definition");
        let inner = out.find("for k_14 in").expect("the inner loop");
        assert!(def < inner && inner < save && save < load, "{out}");
        let reverse = out
            .find("for j_10 in (lo_8..hi_9).rev() {")
            .expect("the reverse loop");
        let next = out[reverse..].find('\n').map(|k| reverse + k + 1);
        let first = out[next.expect("a line")..].trim_start();
        assert!(first.starts_with("acc_11 = acc_11_tape"), "{out}");
    }

    /// A `let` inside one branch of an `if` (bundle adjustment's `theta` where `θ² ≠ 0`) is
    /// private to the iteration: the loop is fused, nothing is taped. A variable of the loop's
    /// state written in one branch only is not, and keeps its tape.
    #[test]
    fn branch_local_lets_leave_the_loop_fused() {
        let body = |assign: proc_macro2::TokenStream| {
            pretty(
                quote!(),
                quote! {
                    fn f(x: &[f64]) -> f64 {
                        let mut s = 0.0;
                        let mut m = 1.0;
                        for i in 0..x.len() {
                            let a = x[i];
                            let y;
                            if a > 0.0 {
                                let t = a.sin();
                                let u = t * t;
                                y = u * a;
                                #assign
                            } else {
                                y = a;
                            }
                            s += y * m;
                        }
                        s
                    }
                },
            )
        };
        let out = body(quote!());
        assert!(!out.contains("_tape"), "{out}");
        assert!(!out.contains(".push("), "{out}");
        let out = body(quote!(m = m * t;));
        assert!(out.contains("_tape"), "{out}");
    }

    /// A buffer filled from the inputs at the top of a loop body and read only after the fill
    /// (GMM's `x - mu`) is filled again by the reverse iteration: no tape for it. The same
    /// buffer read before its fill keeps its tape.
    #[test]
    fn cheap_fills_are_redone_not_taped() {
        let body = |before: proc_macro2::TokenStream| {
            pretty(
                quote!(),
                quote! {
                    fn f(x: &[f64], mu: &[f64]) -> f64 {
                        let mut xc = vec![0.0; 2];
                        let mut s = 0.0;
                        for r in 0..2 {
                            for c in 0..3 {
                                #before
                                for j in 0..2 {
                                    xc[j] = x[j + r] - mu[c * 2 + j];
                                }
                                for j in 0..2 {
                                    s += (xc[j] * xc[j]).exp();
                                }
                            }
                        }
                        s
                    }
                },
            )
        };
        let out = body(quote!());
        assert!(!out.contains("xc_3_tape"), "{out}");
        // The forward sweep's fill and the reverse sweep's, each through a window of `xc`,
        // and the window the two loops' jammed reverse takes (`jam.rs`: the fill's body is in
        // it, so the window is exclusive, though the reverse only reads `xc`).
        assert_eq!(out.matches("&mut xc_3[__s..").count(), 3, "{out}");
        let out = body(quote!(s += xc[0];));
        assert!(out.contains("xc_3_tape"), "{out}");
    }

    /// A sum used non-linearly after its loop (`s.sqrt()`) is fused with a deferred seed: the
    /// reverse sweep scales the shadow and adds the scalars' private adjoints, once. A slice
    /// read again after the loop keeps the loop replayed.
    #[test]
    fn deferred_seeds_scale_once() {
        let body = |after: proc_macro2::TokenStream| {
            pretty(
                quote!(),
                quote! {
                    fn f(x: &[f64], c: f64) -> f64 {
                        let mut s = 0.0;
                        for i in 0..x.len() {
                            s += (x[i] * c).sin();
                        }
                        s.sqrt() #after
                    }
                },
            )
        };
        let out = body(quote!());
        assert_eq!(
            out.matches("for __e in x_1_bar.iter_mut()").count(),
            1,
            "{out}"
        );
        assert_eq!(
            out.matches("c_2_bar += __g * c_2_bar_unscaled4;").count(),
            1,
            "{out}"
        );
        let out = body(quote!(+ x[0]));
        assert!(
            !out.contains("iter_mut") && !out.contains("unscaled"),
            "{out}"
        );
    }

    /// The reverse of a replayed loop whose iterations commute runs ascending (the inner
    /// product of a logistic regression: `w_bar[j] += g * x[j]`, which LLVM vectorises); a
    /// recurrence, a loop restoring values, and one with a branch still run descending.
    #[test]
    fn commuting_reverse_iterations_run_ascending() {
        let out = pretty(
            quote!(wrt(w)),
            quote! {
                fn f(w: &[f64], xs: &[f64], ys: &[f64]) -> f64 {
                    let d = w.len();
                    let mut loss = 0.0;
                    for s in 0..ys.len() {
                        let mut z = 0.0;
                        for j in 0..d {
                            z += w[j] * xs[s * d + j];
                        }
                        loss += (1.0 + (-ys[s] * z).exp()).ln();
                    }
                    loss / ys.len() as f64
                }
            },
        );
        assert!(!out.contains(".rev()"), "{out}");
        // Stores at `c * d + j`: through a window of the shadow's row, which checks the
        // loop's elements once, before it (no separate check of the last element).
        let out = pretty(
            quote!(wrt(w)),
            quote! {
                fn f(w: &[f64], xs: &[f64], d: usize, k: usize) -> f64 {
                    let mut loss = 0.0;
                    for c in 0..k {
                        let mut acc = 0.0;
                        for j in 0..d {
                            acc += w[c * d + j] * xs[j];
                        }
                        loss += acc.tanh();
                    }
                    loss
                }
            },
        );
        assert!(!out.contains(".rev()"), "{out}");
        assert!(out.contains("&mut w_1_bar[__s.."), "{out}");
        assert!(!out.contains("let _ = &w_1_bar[c_"), "{out}");
        for body in [
            quote!(s = s * x[i].sin();),
            quote!(let t = s; s = x[i] * t + 1.0;),
            quote!(if x[i] > 0.0 {
                s += x[i];
            }),
        ] {
            let out = pretty(
                quote!(),
                quote! {
                    fn f(x: &[f64]) -> f64 {
                        let mut s = 1.0;
                        for i in 0..x.len() {
                            #body
                        }
                        s.sqrt() + x[0]
                    }
                },
            );
            assert!(out.contains(".rev()"), "{body}: {out}");
        }
    }

    /// Row loads `w[c * d + j]` go through windows, forward and reverse, and so does the
    /// row's shadow when the reverse touches it nowhere else; a shadow also written at `j` is
    /// indexed as before.
    #[test]
    fn rows_are_read_and_written_through_windows() {
        let rows = |extra: proc_macro2::TokenStream| {
            pretty(
                quote!(),
                quote! {
                    fn f(w: &[f64], x: &[f64], d: usize) -> f64 {
                        let mut s = 0.0;
                        for c in 0..w.len() / d {
                            let mut z = 0.0;
                            for j in 0..d {
                                z += w[c * d + j] * x[j] #extra;
                            }
                            s += z.tanh();
                        }
                        s
                    }
                },
            )
        };
        let out = rows(quote!());
        assert!(out.contains("&w_1[__s.."), "{out}");
        assert!(out.contains("&mut w_1_bar[__s.."), "{out}");
        assert!(!out.contains("w_1_bar[c_7 * d_3 + j_"), "{out}");
        let out = rows(quote!(*w[j]));
        assert!(!out.contains("&mut w_1_bar["), "{out}");
        assert!(out.contains("w_1_bar[c_7 * d_3 + j_"), "{out}");
    }

    /// A running maximum keeps the position of its last copy, not its decisions: no tape, no
    /// reverse loop over the decisions, one indexed update. A copy that is not a plain element
    /// (`x[i] + 0.0`) is differentiated the general way, recording the decisions.
    #[test]
    fn selection_loops_keep_one_position() {
        let lse = |copy: proc_macro2::TokenStream| {
            pretty(
                quote!(),
                quote! {
                    fn lse(x: &[f64]) -> f64 {
                        let mut mx = x[0];
                        for i in 1..x.len() {
                            if x[i] > mx {
                                mx = #copy;
                            }
                        }
                        let mut s = 0.0;
                        for i in 0..x.len() {
                            s += (x[i] - mx).exp();
                        }
                        s.ln() + mx
                    }
                },
            )
        };
        let out = lse(quote!(x[i]));
        assert!(!out.contains("Tape"), "{out}");
        assert!(!out.contains(".rev()"), "{out}");
        assert!(out.contains("x_1_bar[mx_src_"), "{out}");
        let out = lse(quote!(x[i] + 0.0));
        assert!(out.contains("cond_7_tape"), "{out}");
        assert!(out.contains(".rev()"), "{out}");
    }

    #[test]
    #[ignore]
    fn show() {
        let src = std::env::var("AD_SHOW").unwrap_or_default();
        let mut item: syn::ItemFn = syn::parse_str(&src).unwrap();
        // `#[gradient(...)]` / `#[ad::gradient(...)]` on the function: its arguments are the
        // macro's, as when the compiler calls it.
        let mut attr = TokenStream::new();
        item.attrs.retain(|a| {
            let is_ours = a
                .path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "gradient");
            if is_ours {
                if let syn::Meta::List(l) = &a.meta {
                    attr = l.tokens.clone();
                }
            }
            !is_ours
        });
        println!("{}", pretty(attr, quote!(#item)));
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    /// Expansion time of large bodies, stage by stage:
    /// `cargo test -p ad-macro --release timing -- --ignored --nocapture`. Bodies: straight-line
    /// code, the same inside a `for` loop over a slice, and `if`s nested `n / 10` deep; sizes in
    /// float operations (four per generated statement pair). The last column is the time per
    /// operation, which stays flat when expansion grows linearly.
    #[test]
    #[ignore]
    fn time_large_bodies() {
        // Deep nesting needs the stack `expand` gives itself.
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(time_large_bodies_on_this_thread)
            .unwrap()
            .join()
            .unwrap();
    }

    /// Token trees, groups and their contents included: what crosses the proc-macro bridge.
    fn count_tokens(ts: TokenStream) -> usize {
        ts.into_iter()
            .map(|t| match t {
                proc_macro2::TokenTree::Group(g) => 1 + count_tokens(g.stream()),
                _ => 1,
            })
            .sum()
    }

    fn time_large_bodies_on_this_thread() {
        println!(
            "| body | operations | parse | lower | analyse | emit | total | µs / op | tokens out |"
        );
        println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        for ops in [500usize, 1000, 2000, 5000] {
            let pairs = ops / 4;
            let mut straight = String::from("let mut s = x;\n");
            for i in 0..pairs {
                straight.push_str(&format!(
                    "let t{i} = s * 1.01 + y.sin();\ns += t{i} * 0.5;\n"
                ));
            }
            let mut looped = String::from("let mut s = 0.0;\nfor i in 0..v.len() {\n");
            for i in 0..pairs {
                looped.push_str(&format!(
                    "let t{i} = s * 1.01 + v[i].sin();\ns += t{i} * 0.5;\n"
                ));
            }
            looped.push('}');
            let depth = ops / 10;
            let mut nested = String::from("let mut s = x;\n");
            for i in 0..depth {
                nested.push_str(&format!(
                    "if s > {i}.5 {{ s = s * y + 1.0; s = s.sin() * 2.0;\n"
                ));
            }
            nested.push_str(&"}".repeat(depth));
            let bodies = [
                (
                    "straight-line",
                    format!("fn big(x: f64, y: f64) -> f64 {{ {straight} s }}"),
                    ops,
                ),
                (
                    "in a loop",
                    format!("fn big(v: &[f64], x: f64) -> f64 {{ {looped} s }}"),
                    ops,
                ),
                (
                    "nested ifs",
                    format!("fn big(x: f64, y: f64) -> f64 {{ {nested} s }}"),
                    depth * 4,
                ),
            ];
            for (kind, src, n) in bodies {
                let item: TokenStream = src.parse().unwrap();
                let t = Instant::now();
                let item_fn: syn::ItemFn = syn::parse2(item.clone()).unwrap();
                let parse = t.elapsed();
                let t = Instant::now();
                let mut cx = Errors::default();
                let func = lower::lower(&item_fn, &Default::default(), &mut cx).unwrap();
                let lower = t.elapsed();
                let t = Instant::now();
                let facts = analyse::analyse(&func);
                let analyse = t.elapsed();
                let t = Instant::now();
                let out = emit::emit(&item_fn, &func, &facts, &format_ident!("big_grad"), false);
                let emit = t.elapsed();
                assert!(!out.is_empty());
                let total = parse + lower + analyse + emit;
                let ms = |d: std::time::Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
                println!(
                    "| {kind} | {n} | {} | {} | {} | {} | {} | {:.1} | {} |",
                    ms(parse),
                    ms(lower),
                    ms(analyse),
                    ms(emit),
                    ms(total),
                    total.as_secs_f64() * 1e6 / n as f64,
                    count_tokens(out)
                );
            }
        }
    }
}

#[cfg(test)]
mod deep {
    use super::*;

    /// Each `let` of a function body opens a debug-info scope nested in the previous one, and
    /// LLVM's debug info recurses on that nesting: a few thousand `let`s in one block crash a
    /// debug build (SIGSEGV in rustc; 5,000 operations did, 7,500 `let`s). `f_grad`'s top-level
    /// block may add only a few to the user's own.
    #[test]
    fn generated_lets_stay_close_to_the_users() {
        let pairs = 1250;
        let body: String = (0..pairs)
            .map(|i| format!("let t{i} = s * 1.01 + y.sin(); s += t{i} * 0.5;\n"))
            .collect();
        let item: TokenStream =
            format!("fn big(x: f64, y: f64) -> f64 {{ let mut s = x; {body} s }}")
                .parse()
                .unwrap();
        let out: syn::File = syn::parse2(expand(quote!(), item)).unwrap();
        let grad = out
            .items
            .iter()
            .find_map(|i| match i {
                syn::Item::Fn(f) if f.sig.ident == "big_grad" => Some(f),
                _ => None,
            })
            .unwrap();
        let lets = grad
            .block
            .stmts
            .iter()
            .filter(|s| matches!(s, syn::Stmt::Local(_)))
            .count();
        // The user's lets, plus one per 64 zeroed adjoints and a few more.
        assert!(
            lets <= pairs + 1 + pairs / 32 + 10,
            "{lets} top-level lets for {} in the function",
            pairs + 1
        );
    }

    /// A long sum nests 2,000 levels deep in syn's tree: it must not overflow the stack.
    #[test]
    fn long_sum_expands() {
        let body = std::iter::repeat_n("+ 1.0", 2000)
            .collect::<Vec<_>>()
            .join(" ");
        let item: TokenStream = format!("fn deep(x: f64) -> f64 {{ x {body} }}")
            .parse()
            .unwrap();
        let out = expand(quote!(), item).to_string();
        assert!(out.contains("deep_grad") && !out.contains("compile_error"));
    }
}
