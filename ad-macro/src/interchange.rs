//! Interchanged reductions: a loop over `j` whose body resets an accumulator, sums into it in
//! an inner loop over `k`, and then uses it, where the sum reads memory along a column
//! (`b[k * n + j]`: a stride of `n` in `k`, one in `j`). The textbook matrix product:
//!
//! ```text
//! for j in lo..hi {
//!     acc = init(j);
//!     for k in a..b { acc = acc + e(j, k); }
//!     rest(j, acc);
//! }
//! ```
//!
//! Differentiated as written, the reverse of the inner loop adds into the column of `b`'s
//! shadow, `n` elements apart, once per `j`: a strided read-modify-write of all of the shadow
//! for every row of the product, which the cache cannot hold together with `b` (the matrix
//! product at n = 64 ran at 5 × the function and the hand-written adjoint). The loops are
//! rewritten to sum all the `j` at once, in a buffer, with `j` innermost:
//!
//! ```text
//! acc_v = vec![0.0; hi - lo];
//! for j in lo..hi { acc_v[j - lo] = init(j); }
//! for k in a..b { for j in lo..hi { acc_v[j - lo] = acc_v[j - lo] + e(j, k); } }
//! for j in lo..hi { acc = acc_v[j - lo]; rest(j, acc); }
//! ```
//!
//! Each sum adds the same terms in the same order (`k` ascending), so the forward values are
//! the same bits. The reverse of the middle nest then runs along rows of `b` and of its shadow.
//!
//! The rewrite applies when the outer loop (no early exit, no adapters) begins with the reset
//! of a float `acc` and the bounds of the inner loop, followed by the inner loop (no early
//! exit, no adapters), whose body is only increments `acc = acc + x` (or `x + acc`,
//! `acc - x`) of an active `acc`. Nothing the outer loop writes may be read by the reset, the
//! inner bounds or the increments, apart from `j`, `k` and the increments' own `acc`; the inner
//! bounds are hidden variables no other statement reads. And it pays: some load of the
//! increments steps by one in `j` ([`crate::window::steps_by_one`]) while depending on `k`
//! otherwise, and no load that depends on `j` steps by one in `k` (a row of `w` read as
//! `w[j * n + k]`, an MLP's layer, is left as written). That some index steps by one in `j`
//! also says `j` and its bounds are `usize`, as the buffer's indexing needs.
//!
//! It runs after [`crate::select::rewrite`], on the analysis' activity.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::Span;
use quote::quote;

use crate::analyse::{deep_reads, operand_reads, shallow_reads, stmt_reads, writes};
use crate::emit::var_ident;
use crate::intrinsics::Op;
use crate::ir::*;
use crate::select::{code, new_site, new_var};

/// Rewrites every interchangeable reduction of `f`. Returns whether any was.
///
/// Leaves `f` untouched when there is none.
pub fn rewrite(f: &mut Func, active: &[bool]) -> bool {
    // How often each variable is read, by any statement.
    let mut reads = HashMap::new();
    f.body.walk(&mut |t| {
        for r in shallow_reads(t) {
            *reads.entry(r).or_insert(0usize) += 1;
        }
    });
    let cx = Cx { active, reads };
    let mut any = false;
    f.body
        .walk(&mut |s| any |= matches!(s, Stmt::For { .. }) && matches(f, &cx, s).is_some());
    if !any {
        return false;
    }
    let mut body = std::mem::take(&mut f.body);
    let changed = rewrite_block(f, &cx, &mut body);
    f.body = body;
    changed
}

/// What the matching needs besides the loop: the activity, and how often each variable is
/// read in the whole function.
struct Cx<'a> {
    active: &'a [bool],
    reads: HashMap<VarId, usize>,
}

fn rewrite_block(f: &mut Func, cx: &Cx, b: &mut Block) -> bool {
    crate::select::rewrite_statements(f, b, &mut |f, s| match matches(f, cx, &s) {
        Some(m) => Ok(interchange(f, s, m)),
        None => Err(Box::new(s)),
    })
}

/// Where the parts of a matched outer loop are.
struct Match {
    acc: VarId,
    /// Position of the reset `acc = init(j)` in the outer body.
    reset: usize,
    /// Position of the inner loop in the outer body (after the reset and the bounds).
    inner: usize,
}

/// Whether the outer loop `s` is an interchangeable reduction (see the module's
/// documentation).
fn matches(f: &Func, cx: &Cx, s: &Stmt) -> Option<Match> {
    let Stmt::For {
        index: j,
        range,
        body,
        exit: None,
        ..
    } = s
    else {
        return None;
    };
    if !range.adapters.is_empty() {
        return None;
    }
    // The inner loop: the first statement that is not a `Set` or the reset.
    let inner = body
        .stmts
        .iter()
        .position(|t| !matches!(t, Stmt::Set { .. } | Stmt::Assign { .. }))?;
    let Stmt::For {
        index: k,
        range: k_range,
        body: k_body,
        exit: None,
        ..
    } = &body.stmts[inner]
    else {
        return None;
    };
    if !k_range.adapters.is_empty() || k_body.stmts.is_empty() {
        return None;
    }
    // Before it: exactly one float assignment (the reset) and the inner loop's bounds.
    let mut reset = None;
    for (p, t) in body.stmts[..inner].iter().enumerate() {
        match t {
            Stmt::Assign {
                place: Place::Var(v),
                ..
            } if reset.is_none() => reset = Some((p, *v)),
            Stmt::Set { dst, .. } if *dst == k_range.start || *dst == k_range.end => {}
            _ => return None,
        }
    }
    let (reset, acc) = reset?;
    if f.vars[acc].sort != Sort::Float || !cx.active[acc] {
        return None;
    }
    // The reset reads no `acc`; the bounds read neither `acc` nor `j` (they are set once).
    for (p, t) in body.stmts[..inner].iter().enumerate() {
        let reads = stmt_reads(t);
        if reads.contains(&acc) || (p != reset && reads.contains(j)) {
            return None;
        }
    }
    for bound in [k_range.start, k_range.end] {
        if f.vars[bound].role != Role::Hidden {
            return None;
        }
    }
    // The increments.
    let mut loads = Vec::new();
    for t in &k_body.stmts {
        let Stmt::Assign {
            place: Place::Var(v),
            temps,
            value: Operand::Var(root),
            ..
        } = t
        else {
            return None;
        };
        if *v != acc {
            return None;
        }
        let node = temps.iter().find(|n| n.id == *root)?;
        let term = match &node.rhs {
            Rhs::Op {
                op: Op::Add,
                args,
                int_arg: None,
            } => match args.as_slice() {
                [Operand::Var(a), x] | [x, Operand::Var(a)] if *a == acc => x,
                _ => return None,
            },
            Rhs::Op {
                op: Op::Sub,
                args,
                int_arg: None,
            } => match args.as_slice() {
                [Operand::Var(a), x] if *a == acc => x,
                _ => return None,
            },
            _ => return None,
        };
        // `acc` read once, as the increment's own operand; no calls.
        let mut reads = Vec::new();
        operand_reads(temps, term, &mut reads);
        if reads.contains(&acc) || stmt_reads(t).iter().filter(|r| **r == acc).count() != 1 {
            return None;
        }
        for n in temps {
            match &n.rhs {
                Rhs::Call { .. } => return None,
                Rhs::Load { index, .. } => loads.push(&index.tokens),
                _ => {}
            }
        }
    }
    // Invariance: what the reset, the bounds and the increments read is not written by the
    // outer loop, apart from `j`, `k` and `acc` (checked above).
    let mut written = BTreeSet::new();
    writes(s, &mut written);
    written.remove(j);
    if written.contains(&range.start) || written.contains(&range.end) {
        return None;
    }
    let mut reads = Vec::new();
    for t in &body.stmts[..=inner] {
        deep_reads(t, &mut reads);
    }
    for r in reads {
        if written.contains(&r) && r != *k && r != acc && r != k_range.start && r != k_range.end {
            return None;
        }
    }
    // The reset reads no `acc` (it is written by the loop, so the check above covers it) and
    // the bounds are read by the inner loop alone.
    let read = |v: VarId| cx.reads.get(&v).copied().unwrap_or(0);
    if k_range.start == k_range.end || read(k_range.start) != 1 || read(k_range.end) != 1 {
        return None;
    }
    // It pays.
    let (j_name, k_name) = (
        var_ident(&f.vars[*j], *j).to_string(),
        var_ident(&f.vars[*k], *k).to_string(),
    );
    let column = loads.iter().any(|e| {
        crate::window::steps_by_one(e, &j_name)
            && crate::window::mentions_in(e, &k_name)
            && !crate::window::steps_by_one(e, &k_name)
    });
    let row_of_j = loads
        .iter()
        .any(|e| crate::window::mentions_in(e, &j_name) && crate::window::steps_by_one(e, &k_name));
    (column && !row_of_j).then_some(Match { acc, reset, inner })
}

/// The statements replacing the outer loop `s`.
fn interchange(f: &mut Func, s: Stmt, m: Match) -> Vec<Stmt> {
    let Stmt::For {
        id,
        index: j,
        range,
        body,
        exit,
    } = s
    else {
        unreachable!("matches() matched a for loop")
    };
    let Match { acc, reset, inner } = m;
    let float = f.float.clone();
    let span = Span::call_site();
    let name = f.vars[acc].name.clone();
    let accv = new_var(f, &format!("{name}_v"), Sort::Buffer, Role::Local);
    let (lo, hi) = (range.start, range.end);
    let (lo_i, hi_i) = (var_ident(&f.vars[lo], lo), var_ident(&f.vars[hi], hi));
    let at = |f: &Func, j: VarId| {
        let j_i = var_ident(&f.vars[j], j);
        code(quote!(#j_i - #lo_i), vec![j, lo], span)
    };

    let mut stmts = body.stmts;
    let rest = stmts.split_off(inner + 1);
    let Some(Stmt::For {
        id: k_id,
        index: k,
        range: k_range,
        body: k_body,
        exit: k_exit,
    }) = stmts.pop()
    else {
        unreachable!("matches() found the inner loop")
    };
    let mut out = Vec::new();
    let mut reset_stmt = None;
    for (p, t) in stmts.into_iter().enumerate() {
        if p == reset {
            reset_stmt = Some(t);
        } else {
            // The inner loop's bounds, set once.
            out.push(t);
        }
    }
    let Some(mut reset_stmt) = reset_stmt else {
        unreachable!("matches() found the reset")
    };

    // The buffer, filled with the reset's value when it is a constant.
    let fill = match &reset_stmt {
        Stmt::Assign {
            temps,
            value: Operand::Const(c),
            ..
        } if temps.is_empty() => Some(c.clone()),
        _ => None,
    };
    let fill_tokens = fill.clone().unwrap_or_else(|| quote!(0.0));
    out.push(Stmt::BufDecl {
        site: new_site(f),
        buf: accv,
        init: code(
            quote!(::std::vec![#fill_tokens as ::core::primitive::#float;
                if #lo_i < #hi_i { #hi_i - #lo_i } else { 0 }]),
            vec![lo, hi],
            span,
        ),
    });
    if fill.is_none() {
        let j1 = new_var(f, &f.vars[j].name.clone(), Sort::Int, Role::LoopIndex);
        crate::select::rename(f, &mut reset_stmt, j, j1);
        if let Stmt::Assign { place, .. } = &mut reset_stmt {
            *place = Place::Elem {
                buf: accv,
                index: at(f, j1),
            };
        }
        out.push(Stmt::For {
            id: new_site(f),
            index: j1,
            range: range.clone(),
            body: Block {
                stmts: vec![reset_stmt],
            },
            exit: None,
        });
    }

    // The sums, `j` innermost.
    let j2 = new_var(f, &f.vars[j].name.clone(), Sort::Int, Role::LoopIndex);
    let mut sums = Vec::with_capacity(k_body.stmts.len());
    for mut t in k_body.stmts {
        crate::select::rename(f, &mut t, j, j2);
        let load = new_var(f, "_t", Sort::Float, Role::Temp);
        let index = at(f, j2);
        if let Stmt::Assign {
            place,
            temps,
            value: Operand::Var(root),
            ..
        } = &mut t
        {
            let root_span = temps
                .iter()
                .find(|n| n.id == *root)
                .map_or(span, |n| n.span);
            for n in temps.iter_mut() {
                if let Rhs::Op { args, .. } = &mut n.rhs {
                    for a in args {
                        if matches!(a, Operand::Var(v) if *v == acc) {
                            *a = Operand::Var(load);
                        }
                    }
                }
            }
            temps.insert(
                0,
                Node {
                    id: load,
                    rhs: Rhs::Load {
                        buf: accv,
                        index: index.clone(),
                    },
                    span: root_span,
                },
            );
            *place = Place::Elem { buf: accv, index };
        }
        sums.push(t);
    }
    out.push(Stmt::For {
        id: k_id,
        index: k,
        range: k_range,
        body: Block {
            stmts: vec![Stmt::For {
                id: new_site(f),
                index: j2,
                range: range.clone(),
                body: Block { stmts: sums },
                exit: None,
            }],
        },
        exit: k_exit,
    });

    // The uses, in the outer loop as written.
    let t = new_var(f, "_t", Sort::Float, Role::Temp);
    let read = Stmt::Assign {
        site: new_site(f),
        place: Place::Var(acc),
        temps: vec![Node {
            id: t,
            rhs: Rhs::Load {
                buf: accv,
                index: at(f, j),
            },
            span,
        }],
        value: Operand::Var(t),
        span,
    };
    let mut stmts = vec![read];
    stmts.extend(rest);
    out.push(Stmt::For {
        id,
        index: j,
        range,
        body: Block { stmts },
        exit,
    });
    out
}
