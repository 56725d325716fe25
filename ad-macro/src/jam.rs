//! Jammed reverse loops: adjacent loops over the same range whose reverses run as one loop.
//!
//! A buffer computed by one elementwise loop and read by the next, at the same index, is
//! common (GMM's `xc[j] = x[j] - mu[j]` then `y[j] = q[j] * xc[j]`). Each loop's reverse is a
//! pass of its own: the second stores the buffer's adjoint element by element, and the first
//! reads it back, vectorised as one 16-byte load that two 8-byte stores cannot forward to
//! (GMM at d = 2 stalled there on every component of every point). Run as one loop, each
//! iteration reverses the second body and then the first, and the adjoint is read back right
//! after it is stored, in the same iteration.
//!
//! The forward sweep keeps the loops as written: only the reverse is jammed. That is the
//! reverse of the fused forward loop
//!
//! ```text
//! for j in lo..hi { body1(j); body2(j); }
//! ```
//!
//! which is equivalent to the two loops when
//!
//! - both are plain `for` loops over ranges of the same value (`lo`, `hi` each set just before
//!   its loop by the same pure expression, of values the first loop does not write), with no
//!   adapters, no early exit, and neither fused with its forward (`fuse.rs`);
//! - no variable either body writes is read or written by the other, except memory indexed the
//!   same way: every access, in both bodies, to memory one body writes and the other reads is
//!   at one index `... + j + ...` that steps by one with `j`, whose other terms neither loop
//!   writes (iteration `j` of one loop then touches only what iteration `j` of the other
//!   does). Memory written by both is refused, and so is anything not plain values and memory:
//!   `while` loops, early exits, forward-only statements and buffer declarations. Calls of
//!   other `#[gradient]` functions are plain (they write nothing), but a slice passed to one
//!   counts as read at every index.
//!
//! Order-dependent storage stays in order: each variable's tape is pushed by one of the loops
//! only (nothing is written by both), so its pops are still last-in first-out; the emitter
//! refuses a jam in which more than one loop keeps results on the shared `__temps` tape
//! (`Emitter::jam_of`): one loop's pushes, alone on it, still pop in reverse.
//!
//! Between two loops stand the statements setting the second loop's bounds, which must have no
//! reverse, and before them any plain assignments that read nothing the loops before them
//! write and write nothing those touch ([`movable`]: the MLP's `out = b2` between its hidden
//! layer and its output's sum). Those may come before the first loop: their reverses run
//! after the jammed loop's, and keep nothing on `__temps` (their pops would lie between the
//! loops').
//!
//! Runs of more than two such loops jam into one. [`plan`] finds them; the emitter reverses the
//! jammed loop in place of the last of them and emits nothing for the others.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

use crate::analyse::{deep_reads, writes, Facts};
use crate::emit::var_ident;
use crate::ir::*;

/// A run of adjacent loops whose reverses run as one loop.
pub struct Jam {
    /// The loops' ids, in forward order.
    pub members: Vec<SiteId>,
    /// How many of the jammed body's statements each loop's body gave, in the same order.
    pub parts: Vec<usize>,
    /// The statements between the loops other than their bounds (`movable`): their reverses
    /// run after the jammed loop's, as if they came before the first loop.
    pub moved: Vec<Stmt>,
    /// The loop whose reverse is emitted: the first loop's header over all the bodies, each
    /// renamed to the first loop's index and bounds.
    pub stmt: Stmt,
}

/// Every run of jammable loops of `f`, by the id of its last loop (where its reverse runs).
pub fn plan(f: &Func, facts: &Facts) -> HashMap<SiteId, Rc<Jam>> {
    let mut out = HashMap::new();
    plan_block(f, facts, &f.body, &mut out);
    if let Ok(path) = std::env::var("AD_JAM_DEBUG") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            for j in out.values() {
                let _ = writeln!(file, "{} {}", j.members.len(), j.moved.len());
            }
        }
    }
    out
}

fn plan_block(f: &Func, facts: &Facts, b: &Block, out: &mut HashMap<SiteId, Rc<Jam>>) {
    let mut run: Option<Run> = None;
    for (p, s) in b.stmts.iter().enumerate() {
        match s {
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                plan_block(f, facts, then_branch, out);
                plan_block(f, facts, else_branch, out);
            }
            Stmt::For { body, .. } => plan_block(f, facts, body, out),
            Stmt::While { cond, body, .. } => {
                plan_block(f, facts, cond, out);
                plan_block(f, facts, body, out);
            }
            _ => {}
        }
        let Stmt::For { id, body, .. } = s else {
            continue;
        };
        let member = (*id, body.stmts.len());
        if !candidate(f, facts, s) {
            close(&mut run, out);
            continue;
        }
        // Statements between the run and this loop, before its bounds, whose reverse may run
        // after the jammed loop's.
        let movable_all = |r: &Run| {
            let (mut written, mut touched) = (BTreeSet::new(), Vec::new());
            writes(&r.stmt, &mut written);
            deep_reads(&r.stmt, &mut touched);
            let touched: BTreeSet<VarId> = touched.into_iter().collect();
            b.stmts[r.last + 1..p - 2]
                .iter()
                .all(|t| movable(&written, &touched, t))
        };
        let extended = match &run {
            Some(r) if p >= r.last + 3 && movable_all(r) => {
                jammed(f, facts, &b.stmts, r.first, &r.stmt, p)
            }
            _ => None,
        };
        match (extended, &mut run) {
            (Some(stmt), Some(r)) => {
                r.moved.extend(b.stmts[r.last + 1..p - 2].iter().cloned());
                r.members.push(member);
                r.stmt = stmt;
                r.last = p;
            }
            _ => {
                close(&mut run, out);
                run = Some(Run {
                    members: vec![member],
                    moved: Vec::new(),
                    stmt: s.clone(),
                    first: p,
                    last: p,
                });
            }
        }
    }
    close(&mut run, out);
}

/// The run of loops being jammed, while a block is scanned.
struct Run {
    /// Each loop's id and its body's number of statements.
    members: Vec<(SiteId, usize)>,
    /// The statements between the loops, other than their bounds.
    moved: Vec<Stmt>,
    /// The loops jammed so far.
    stmt: Stmt,
    /// The positions of the first and the last loop in the block.
    first: usize,
    last: usize,
}

/// Records a finished run of two loops or more.
fn close(run: &mut Option<Run>, out: &mut HashMap<SiteId, Rc<Jam>>) {
    if let Some(Run {
        members,
        moved,
        stmt,
        ..
    }) = run.take()
    {
        if members.len() > 1 {
            let (members, parts): (Vec<_>, Vec<_>) = members.into_iter().unzip();
            let last = *members.last().expect("not empty");
            out.insert(
                last,
                Rc::new(Jam {
                    members,
                    parts,
                    moved,
                    stmt,
                }),
            );
        }
    }
}

/// A loop that may take part in a jam: plain, reversed on its own, with a reverse.
fn candidate(f: &Func, facts: &Facts, s: &Stmt) -> bool {
    let Stmt::For {
        id,
        index,
        range,
        body,
        exit: None,
    } = s
    else {
        return false;
    };
    let mut plain = true;
    body.walk(&mut |t| {
        plain &= match t {
            Stmt::Plain(_) | Stmt::While { .. } | Stmt::BufDecl { .. } => false,
            Stmt::For { exit, range, .. } => exit.is_none() && range.adapters.is_empty(),
            // (Calls of other `#[gradient]` functions too: they write nothing, and what they
            // read is checked as accesses, `accesses`.)
            Stmt::Assign { .. } | Stmt::Set { .. } | Stmt::If { .. } => true,
        }
    });
    plain
        && range.adapters.is_empty()
        && !facts.fused.contains_key(id)
        && f.vars[*index].sort == Sort::Int
        && facts.relevant(f, s)
}

/// Whether statement `s`, after loops that write `written` and read `touched` in the forward
/// sweep, may come before them: a plain assignment (no call, no region) reading nothing they
/// write and writing nothing they touch. Its reverse then runs after the jammed loop's.
fn movable(written: &BTreeSet<VarId>, touched: &BTreeSet<VarId>, s: &Stmt) -> bool {
    let plain = match s {
        Stmt::Assign { temps, .. } => temps.iter().all(|n| !matches!(n.rhs, Rhs::Call { .. })),
        Stmt::Set { .. } => true,
        _ => false,
    };
    let (mut own, mut reads) = (BTreeSet::new(), Vec::new());
    writes(s, &mut own);
    deep_reads(s, &mut reads);
    plain
        && reads.iter().all(|r| !written.contains(r))
        && own
            .iter()
            .all(|w| !written.contains(w) && !touched.contains(w))
}

/// `first` (a loop or a jammed run, whose first loop is `stmts[at]`) followed by loop
/// `stmts[p]`, jammed, if that is equivalent. The two statements before each loop must set
/// its bounds.
fn jammed(
    f: &Func,
    facts: &Facts,
    stmts: &[Stmt],
    at: usize,
    first: &Stmt,
    p: usize,
) -> Option<Stmt> {
    let next = &stmts[p];
    let (
        Stmt::For {
            id,
            index: a,
            range: r1,
            body: b1,
            ..
        },
        Stmt::For {
            index: b,
            range: r2,
            body: b2,
            ..
        },
    ) = (first, next)
    else {
        return None;
    };
    if at < 2 || r1.start == r1.end || r2.start == r2.end {
        return None;
    }
    // `stmts[k]` sets `v`: its code.
    let set_at = |k: usize, v: VarId| match &stmts[k] {
        Stmt::Set { dst, code, .. } if *dst == v => Some(code),
        _ => None,
    };
    let set_of = |k: usize, v: VarId| set_at(k, v).or_else(|| set_at(k + 1, v));
    let (lo1, hi1) = (set_of(at - 2, r1.start)?, set_of(at - 2, r1.end)?);
    let (lo2, hi2) = (set_of(p - 2, r2.start)?, set_of(p - 2, r2.end)?);
    // The statements setting the second loop's bounds have no reverse.
    if stmts[p - 2..p].iter().any(|t| facts.relevant(f, t)) {
        return None;
    }
    // What runs between the first loop's bounds and the second's.
    let mut w1 = BTreeSet::new();
    stmts[at - 2..p - 2].iter().for_each(|t| writes(t, &mut w1));
    let same = |c1: &Code, c2: &Code| {
        pure(&c1.tokens)
            && c1.tokens.to_string() == c2.tokens.to_string()
            && c2
                .reads
                .iter()
                .all(|r| !w1.contains(r) && *r != r2.start && *r != r2.end)
    };
    if !same(lo1, lo2) || !same(hi1, hi2) {
        return None;
    }

    // The second body over the first loop's index and bounds.
    let mut b2 = b2.clone();
    for (from, to) in [(*b, *a), (r2.start, r1.start), (r2.end, r1.end)] {
        for s in &mut b2.stmts {
            crate::select::rename(f, s, from, to);
        }
    }
    let (mut w2, mut reads1, mut reads2) = (BTreeSet::new(), Vec::new(), Vec::new());
    b2.stmts.iter().for_each(|t| writes(t, &mut w2));
    b1.stmts.iter().for_each(|t| deep_reads(t, &mut reads1));
    b2.stmts.iter().for_each(|t| deep_reads(t, &mut reads2));
    let mut w1b = BTreeSet::new();
    b1.stmts.iter().for_each(|t| writes(t, &mut w1b));
    let (reads1, reads2): (BTreeSet<VarId>, BTreeSet<VarId>) =
        (reads1.into_iter().collect(), reads2.into_iter().collect());
    if w1b.iter().any(|v| w2.contains(v)) {
        return None;
    }
    let memory = |v: VarId| matches!(f.vars[v].sort, Sort::Slice | Sort::Buffer);
    let mut shared = Vec::new();
    for (w, r) in [(&w1b, &reads2), (&w2, &reads1)] {
        for &v in w.iter().filter(|v| r.contains(v)) {
            if !memory(v) {
                return None;
            }
            shared.push(v);
        }
    }
    let a_name = var_ident(&f.vars[*a], *a).to_string();
    for m in shared {
        let mut at = Vec::new();
        if !accesses(&b1.stmts, m, &mut at) || !accesses(&b2.stmts, m, &mut at) {
            return None;
        }
        let first_at = at.first()?;
        let key = first_at.tokens.to_string();
        let steps = crate::window::steps_by_one(&first_at.tokens, &a_name);
        let fixed = first_at
            .reads
            .iter()
            .all(|r| r == a || (!w1b.contains(r) && !w2.contains(r)));
        if !steps || !fixed || at.iter().any(|c| c.tokens.to_string() != key) {
            return None;
        }
    }
    let mut body = b1.clone();
    body.stmts.extend(b2.stmts);
    Some(Stmt::For {
        id: *id,
        index: *a,
        range: r1.clone(),
        body,
        exit: None,
    })
}

/// Adds to `out` the index of every access to memory `m` in `stmts` (stores and loads, nested
/// branches and loops included); false if `m` is touched otherwise (read by inactive code,
/// passed to a call, declared).
fn accesses(stmts: &[Stmt], m: VarId, out: &mut Vec<Code>) -> bool {
    let mut ok = true;
    let code_ok = |c: &Code| !c.reads.contains(&m);
    for s in stmts {
        s.walk(&mut |t| match t {
            Stmt::Assign { place, temps, .. } => {
                if let Place::Elem { buf, index } = place {
                    ok &= code_ok(index);
                    if *buf == m {
                        out.push(index.clone());
                    }
                }
                for n in temps {
                    match &n.rhs {
                        Rhs::Load { buf, index } => {
                            ok &= code_ok(index);
                            if *buf == m {
                                out.push(index.clone());
                            }
                        }
                        Rhs::Op {
                            int_arg: Some(c), ..
                        }
                        | Rhs::Expr(c) => ok &= code_ok(c),
                        Rhs::Op { .. } => {}
                        // A slice passed to a call is read at any index.
                        Rhs::Call { args, .. } => {
                            for a in args {
                                match a {
                                    CallArg::Slice(v) => ok &= *v != m,
                                    CallArg::Other(c) => ok &= code_ok(c),
                                    CallArg::Float(_) => {}
                                }
                            }
                        }
                    }
                }
            }
            Stmt::Set { code, .. } | Stmt::BufDecl { init: code, .. } | Stmt::Plain(code) => {
                ok &= code_ok(code)
            }
            Stmt::If { .. } | Stmt::For { .. } | Stmt::While { .. } => {}
        });
    }
    ok
}

/// Whether evaluating a bound twice gives the same value: names, literals, arithmetic,
/// parentheses, indexing, casts and `.len()`, and nothing else (no call, no macro).
fn pure(tokens: &TokenStream) -> bool {
    let toks: Vec<TokenTree> = tokens.clone().into_iter().collect();
    toks.iter().enumerate().all(|(k, t)| match t {
        TokenTree::Ident(_) | TokenTree::Literal(_) => true,
        TokenTree::Punct(p) => match p.as_char() {
            '+' | '-' | '*' | '/' | '%' => true,
            '.' => matches!(
                (toks.get(k + 1), toks.get(k + 2)),
                (Some(TokenTree::Ident(m)), Some(TokenTree::Group(g)))
                    if *m == "len" && g.delimiter() == Delimiter::Parenthesis && g.stream().is_empty()
            ),
            _ => false,
        },
        TokenTree::Group(g) => {
            let call = g.delimiter() == Delimiter::Parenthesis
                && k > 0
                && matches!(&toks[k - 1], TokenTree::Ident(m) if *m != "len")
                && !matches!(&toks[k - 1], TokenTree::Ident(m) if *m == "as");
            !call && g.delimiter() != Delimiter::Brace && pure(&g.stream())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;
    use syn::parse_quote;

    /// The number of loops in each jam of `item`, after the rewrites `expand` runs first.
    fn jams(item: syn::ItemFn) -> Vec<usize> {
        let mut cx = crate::errors::Errors::default();
        let mut f = crate::lower::lower(&item, &Default::default(), &mut cx).expect("lowers");
        assert!(!cx.has_errors());
        let mut facts = crate::analyse::analyse(&f);
        if crate::select::rewrite(&mut f, &facts.active) {
            facts = crate::analyse::analyse(&f);
        }
        if crate::interchange::rewrite(&mut f, &facts.active) {
            facts = crate::analyse::analyse(&f);
        }
        let mut sizes: Vec<usize> = plan(&f, &facts).values().map(|j| j.members.len()).collect();
        sizes.sort_unstable();
        sizes
    }

    #[test]
    fn gmm_centring_and_scaling_jam() {
        let sizes = jams(parse_quote! {
            fn f(p: &[f64], d: usize) -> f64 {
                let n = (p.len() - 2 * d) / d;
                let mut xc = vec![0.0; d];
                let mut y = vec![0.0; d];
                let mut total = 0.0;
                for i in 0..n {
                    for j in 0..d {
                        xc[j] = p[i * d + j] - p[n * d + j];
                    }
                    for j in 0..d {
                        y[j] = p[n * d + d + j].exp() * xc[j];
                    }
                    let mut s = 0.0;
                    for j in 0..d {
                        s += y[j] * y[j];
                    }
                    total += (-0.5 * s).exp();
                }
                total.ln()
            }
        });
        // (With the sum of squares after it: `s = 0.0` before that loop moves.)
        assert_eq!(sizes, [3]);
    }

    #[test]
    fn runs_of_stages_jam_into_one() {
        let sizes = jams(parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let n = x.len();
                let mut a = vec![0.0; n];
                let mut b = vec![0.0; n];
                let mut c = vec![0.0; n];
                let mut s = 0.0;
                for r in 0..3 {
                    for j in 0..n {
                        a[j] = x[j] * (r as f64 + 0.5) + c[j];
                    }
                    for j in 0..n {
                        b[j] = a[j] * a[j] + 0.25;
                    }
                    for j in 0..n {
                        c[j] = b[j].sqrt() * a[j];
                    }
                    for j in 0..n {
                        s += c[j];
                    }
                }
                s
            }
        });
        assert_eq!(sizes, [4]);
    }

    #[test]
    fn an_overwrite_of_what_the_first_loop_read_jams() {
        let sizes = jams(parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let n = x.len();
                let mut y = vec![0.0; n];
                let mut a = vec![0.0; n];
                let mut s = 0.0;
                for j in 0..n {
                    y[j] = x[j].sin();
                }
                for r in 0..2 {
                    for j in 0..n {
                        a[j] = y[j] * x[j] + r as f64;
                    }
                    for j in 0..n {
                        y[j] = (a[j] * 0.5).cos();
                    }
                    for j in 0..n {
                        s += a[j] * y[j];
                    }
                }
                s
            }
        });
        assert_eq!(sizes, [3]);
    }

    #[test]
    fn a_body_with_an_inner_loop_jams() {
        let sizes = jams(parse_quote! {
            fn f(p: &[f64], m: usize) -> f64 {
                let mut h = vec![0.0; m];
                let mut o = vec![0.0; m];
                let mut total = 0.0;
                for _ in 0..2 {
                    for j in 0..m {
                        let mut t = 0.0;
                        for k in 0..m {
                            t += p[m + j * m + k] * p[k];
                        }
                        h[j] = t;
                    }
                    for j in 0..m {
                        o[j] = h[j].tanh() * p[m + m * m + j];
                    }
                    for j in 0..m {
                        total += o[j] * o[j];
                    }
                }
                total
            }
        });
        assert_eq!(sizes, [3]);
    }

    #[test]
    fn independent_statements_between_the_loops_move() {
        // The MLP's `out = b2` between the hidden layer and the output's sum moves; a
        // statement reading what the first loop wrote, or writing what it reads, does not.
        let mlp = |between: syn::Stmt| -> syn::ItemFn {
            parse_quote! {
                fn f(w1: &[f64], b1: &[f64], w2: &[f64], b2: f64, xs: &[f64], ys: &[f64]) -> f64 {
                    let mut h = [0.0; 4];
                    let mut loss = 0.0;
                    for s in 0..ys.len() {
                        let mut c = b2;
                        for j in 0..4 {
                            let mut z = b1[j] * c;
                            for i in 0..3 {
                                z += w1[j * 3 + i] * xs[s * 3 + i];
                            }
                            h[j] = z.tanh();
                        }
                        #between
                        for j in 0..4 {
                            out += w2[j] * h[j];
                        }
                        let e = out - ys[s] + c;
                        loss += e * e;
                    }
                    loss
                }
            }
        };
        assert_eq!(jams(mlp(parse_quote!(let mut out = b2 * 2.0;))), [2]);
        assert_eq!(
            jams(mlp(parse_quote!(let mut out = h[0];))),
            Vec::<usize>::new()
        );
        assert_eq!(
            jams(mlp(parse_quote!(let mut out = { c = 0.5; b2 };))),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn loops_calling_gradient_functions_jam() {
        // `sigmoid(z)` per hidden unit, then the output's sum; a slice passed to a call of
        // memory the other loop writes keeps them apart.
        let layer = |call: syn::Expr| -> syn::ItemFn {
            parse_quote! {
                fn f(w: &[f64], x: &[f64]) -> f64 {
                    let mut h = vec![0.0; 4];
                    let mut loss = 0.0;
                    for s in 0..x.len() {
                        for j in 0..4 {
                            h[j] = #call;
                        }
                        let mut out = 0.0;
                        for j in 0..4 {
                            out += w[j] * h[j];
                        }
                        loss += out * out;
                    }
                    loss
                }
            }
        };
        assert_eq!(jams(layer(parse_quote!(sigmoid(w[j] * x[s])))), [2]);
        assert_eq!(
            jams(layer(parse_quote!(norm(&h) * x[s]))),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn near_misses_stay_apart() {
        let sizes = jams(parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let n = x.len();
                let mut a = vec![0.0; n];
                let mut b = vec![0.0; n];
                let mut s = 0.0;
                for r in 0..2 {
                    // A neighbour's element.
                    for j in 0..n {
                        a[j] = x[j] * x[j] + b[j];
                    }
                    for j in 0..n {
                        b[j] = a[(j + 1) % n] * x[j];
                    }
                    // A scalar carried into the next loop.
                    let mut t = 0.0;
                    for j in 0..n {
                        t += b[j];
                    }
                    for j in 0..n {
                        a[j] = b[j] * t;
                    }
                    // Different bounds.
                    for j in 1..n {
                        b[j] = a[j - 1].sin();
                    }
                    for j in 0..n - 1 {
                        a[j] = b[j] * a[j];
                    }
                    // Memory both write.
                    for j in 0..n {
                        b[j] = a[j] * 2.0;
                    }
                    for j in 0..n {
                        b[j] = b[j] * b[j];
                    }
                    s += a[0] + b[0];
                }
                s
            }
        });
        // Only the neighbour's loop and the sum after it (`t = 0.0` moves before them).
        assert_eq!(sizes, [2]);
    }

    #[test]
    fn bounds_must_be_the_same_pure_expression() {
        assert!(pure(&quote!(d_4 * 2 + x_1.len() / (k_2 - 1))));
        assert!(pure(&quote!(n_3 as usize)));
        assert!(pure(&quote!(idx_2[i_3])));
        assert!(!pure(&quote!(next(n_3))));
        assert!(!pure(&quote!(v_1.pop().unwrap())));
        assert!(!pure(&quote!(m!(n_3))));
        assert!(!pure(&quote!({ n_3 })));
    }
}
