//! Fused loops: a top-level `for` loop whose iterations meet only through sums runs each
//! iteration's reverse right after its forward, inside the forward sweep.
//!
//! Reverse mode replays a loop backwards because iteration `i`'s adjoints depend on what later
//! iterations did with its results. When the iterations share nothing but accumulators
//! (`s += term`, whose adjoint is the same in every iteration) and values each iteration makes
//! for itself, that dependency is gone: iteration `i`'s reverse needs only its own values, which
//! are all still live at the end of its forward, and the accumulators' adjoint. Running the two
//! back to back is what a hand-written adjoint does (Rosenbrock, the GMM's points, an MLP's
//! samples): nothing is taped or recomputed across iterations, the loop runs once, and each
//! iteration's values stay in registers. Tapenade calls such loops independent-iterations
//! loops; here the accumulators' adjoint must also be known before the loop runs.
//!
//! A top-level `for` loop (no early exit, no `while` inside, buffers declared only at the top
//! level of its body) is fused when:
//!
//! - every variable it writes is the loop's index, an **accumulator** (an active float whose
//!   every use in the loop is `v = v + e`, `v = e + v` or `v = v - e` with `e` not reading `v`),
//!   or **private**: each iteration writes it before reading it (see [`private`]) and nothing
//!   after the loop reads it;
//! - every active variable it reads and does not write is not written after it (its adjoint,
//!   accumulated early, must not be consumed by a later definition);
//! - each accumulator's adjoint at the end of the loop is a known expression: the statements
//!   after the loop use it only linearly, with coefficients computed before the loop
//!   ([`exit_adjoint`]); or the loop has one accumulator only, and its seed is **deferred**
//!   ([`Deferred`]: the loop runs with the adjoint 1, the reverse sweep scales what it added);
//! - (checked by the analysis) nothing the loop overwrites is needed by the reverse sweep of the
//!   statements before it.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::TokenStream;
use quote::quote;

use crate::analyse::{deep_reads, operand_reads, shallow_reads, stmt_reads, writes};
use crate::emit::var_ident;
use crate::intrinsics::Op;
use crate::ir::*;

/// A fused loop's plan.
#[derive(Debug, Clone)]
pub struct Fused {
    /// Accumulators, with the expression of their adjoint at the end of the loop.
    pub accs: Vec<(VarId, TokenStream)>,
    /// Active variables the loop reads or writes: their adjoints are declared before it.
    pub touched: Vec<VarId>,
    /// Set when the loop's one accumulator has an adjoint not known before the loop.
    pub deferred: Option<Deferred>,
}

/// A fused loop whose only accumulator is used non-linearly after it (`s.sqrt()`, `s.ln()`):
/// its adjoint `σ` at the end of the loop is known only when the reverse sweep reaches the
/// loop. Everything the loop's reverse adds is linear in `σ`, so the loop runs fused with the
/// accumulator's adjoint set to 1, and the reverse sweep, at the loop's place, multiplies what
/// it added by `σ`: the shadows in [`Deferred::scaled`] in place, and the private adjoints of
/// [`Deferred::scalars`] into their adjoints. (A hand-written adjoint of `√(Σ xᵢ²)` does the
/// same: one pass for the sum and the unscaled gradient, then one scaling.)
#[derive(Debug, Clone)]
pub struct Deferred {
    /// The accumulator.
    pub acc: VarId,
    /// Active slices and buffers the loop reads and does not write, whose adjoints nothing
    /// else adds to before the loop's place in the reverse sweep: no fused loop before it and
    /// no statement after it reads them (the statements before it add to them later).
    pub scaled: Vec<VarId>,
    /// Active scalars the loop reads and does not write: the loop adds to a private adjoint
    /// of each, added times `σ` to the real one at the loop's place in the reverse sweep.
    pub scalars: Vec<VarId>,
}

/// The loops (by id) of `f`'s top level that can be fused.
pub fn plan(f: &Func, active: &[bool], excluded: &BTreeSet<SiteId>) -> HashMap<SiteId, Fused> {
    let mut out = HashMap::new();
    let stmts = &f.body.stmts;
    // What the statements after each top-level loop write and read (one pass from the end).
    let mut after: HashMap<usize, (BTreeSet<VarId>, BTreeSet<VarId>)> = HashMap::new();
    let (mut w, mut r) = (BTreeSet::new(), BTreeSet::new());
    for (p, s) in stmts.iter().enumerate().rev() {
        if matches!(s, Stmt::For { exit: None, id, .. } if !excluded.contains(id)) {
            after.insert(p, (w.clone(), r.clone()));
        }
        writes(s, &mut w);
        let mut reads = Vec::new();
        deep_reads(s, &mut reads);
        r.extend(reads);
    }
    let mut w_before = BTreeSet::new();
    // Read by the loops fused so far: their reverse adds to these adjoints in the forward sweep.
    let mut read_by_fused = BTreeSet::new();
    for (p, s) in stmts.iter().enumerate() {
        if let (
            Stmt::For {
                id, index, body, ..
            },
            Some((w_after, r_after)),
        ) = (s, after.get(&p))
        {
            let cx = Cx {
                f,
                active,
                after: &stmts[p + 1..],
                w_after,
                r_after,
                w_before: &w_before,
                read_by_fused: &read_by_fused,
            };
            if let Some(fused) = cx.loop_plan(s, *index, body) {
                out.insert(*id, fused);
                let mut r = Vec::new();
                deep_reads(s, &mut r);
                read_by_fused.extend(r);
            }
        }
        writes(s, &mut w_before);
    }
    out
}

struct Cx<'a> {
    f: &'a Func,
    active: &'a [bool],
    /// The top-level statements after the loop.
    after: &'a [Stmt],
    w_after: &'a BTreeSet<VarId>,
    r_after: &'a BTreeSet<VarId>,
    /// Written by the statements before the loop.
    w_before: &'a BTreeSet<VarId>,
    /// Read by the loops fused before this one.
    read_by_fused: &'a BTreeSet<VarId>,
}

impl Cx<'_> {
    fn loop_plan(&self, l: &Stmt, index: VarId, body: &Block) -> Option<Fused> {
        let f = self.f;
        let mut unsupported = false;
        // A buffer declared by the body itself, at its top level, is new in every iteration
        // (`let mut h = vec![0.0; m];` per sample): private, its adjoint zeroed by the
        // declaration's reverse at the end of each iteration.
        let own = own_buffers(f, body);
        l.walk(&mut |s| match s {
            Stmt::BufDecl { buf, .. } if own.contains(buf) => {}
            Stmt::While { .. } | Stmt::BufDecl { .. } | Stmt::For { exit: Some(_), .. } => {
                unsupported = true
            }
            Stmt::Assign { temps, .. } => {
                // A call may overwrite the shadows it is given; keep such loops replayed.
                unsupported |= temps.iter().any(|n| matches!(n.rhs, Rhs::Call { .. }))
            }
            _ => {}
        });
        if unsupported {
            return None;
        }
        let mut w = BTreeSet::new();
        writes(l, &mut w);
        let mut r = Vec::new();
        deep_reads(l, &mut r);
        let r: BTreeSet<VarId> = r.into_iter().collect();
        let sets = range_codes(l);
        // Everything the loop writes, and the values of everything after it, are unstable.
        let stable = |v: VarId| !w.contains(&v) && !self.w_after.contains(&v);
        let tracked = |v: VarId| self.active[v] && f.vars[v].role != Role::Temp;
        for &v in r.difference(&w) {
            if tracked(v) && self.w_after.contains(&v) {
                return None;
            }
        }
        let mut accs = Vec::new();
        let bad = not_accumulated(l);
        let index_of = TouchIndex::default();
        for &v in &w {
            if v == index {
                continue;
            }
            // An accumulator: an active float the loop only updates by adding or subtracting
            // terms that do not read it.
            if self.active[v] && f.vars[v].sort == Sort::Float && !bad.contains(&v) {
                accs.push(v);
            } else if self.r_after.contains(&v) || !private(v, body, &sets, &stable, &index_of) {
                return None;
            }
        }
        let mut acc_exprs = Vec::new();
        let mut unknown = Vec::new();
        for &v in &accs {
            match self.exit_adjoint(v, &stable) {
                Some(e) => acc_exprs.push((v, e)),
                None => unknown.push(v),
            }
        }
        let touched = w
            .iter()
            .chain(&r)
            .copied()
            .filter(|&v| tracked(v))
            .collect::<BTreeSet<_>>();
        let deferred = match unknown.as_slice() {
            [] => None,
            // One accumulator only: with two, what the loop adds mixes their adjoints.
            [acc] if accs.len() == 1 => {
                acc_exprs.push((*acc, quote!(1.0)));
                Some(self.deferred(*acc, &touched, &w)?)
            }
            _ => return None,
        };
        Some(Fused {
            accs: acc_exprs,
            touched: touched.into_iter().collect(),
            deferred,
        })
    }

    /// The plan of a loop whose accumulator `acc` has an adjoint not known before it
    /// ([`Deferred`]), if every slice and buffer it reads has an adjoint that only it adds to
    /// before its place in the reverse sweep.
    fn deferred(
        &self,
        acc: VarId,
        touched: &BTreeSet<VarId>,
        written: &BTreeSet<VarId>,
    ) -> Option<Deferred> {
        let (mut scaled, mut scalars) = (Vec::new(), Vec::new());
        for &v in touched.difference(written) {
            match self.f.vars[v].sort {
                Sort::Float => scalars.push(v),
                Sort::Slice | Sort::Buffer
                    if !self.r_after.contains(&v) && !self.read_by_fused.contains(&v) =>
                {
                    scaled.push(v)
                }
                _ => return None,
            }
        }
        Some(Deferred {
            acc,
            scaled,
            scalars,
        })
    }

    /// The adjoint of accumulator `acc` at the end of the loop, if the statements after the
    /// loop use it linearly with coefficients known before it.
    fn exit_adjoint(&self, acc: VarId, stable: &dyn Fn(VarId) -> bool) -> Option<TokenStream> {
        let f = self.f;
        // Known adjoints as sums of terms; `None`: unknown.
        let mut adj: HashMap<VarId, Option<Vec<TokenStream>>> = HashMap::new();
        adj.insert(f.ret, Some(vec![quote!(1.0)]));
        for s in self.after.iter().rev() {
            match s {
                Stmt::Assign {
                    place: Place::Var(y),
                    temps,
                    value,
                    ..
                } => {
                    if !self.active[*y] {
                        continue;
                    }
                    let a = adj.remove(y).unwrap_or(Some(Vec::new()));
                    let (mut terms, mut poison) = (Vec::new(), Vec::new());
                    self.linear(temps, value, None, stable, &mut terms, &mut poison);
                    {
                        for (u, c) in terms {
                            let entry = adj.entry(u).or_insert(Some(Vec::new()));
                            match (entry.as_mut(), &a) {
                                (Some(list), Some(a)) => {
                                    for t in a {
                                        list.push(match &c {
                                            Some(c) => quote!((#t) * (#c)),
                                            None => t.clone(),
                                        });
                                    }
                                }
                                _ => *entry = None,
                            }
                        }
                        for u in poison {
                            adj.insert(u, None);
                        }
                    }
                }
                other => {
                    let mut touched = Vec::new();
                    deep_reads(other, &mut touched);
                    let mut w = BTreeSet::new();
                    writes(other, &mut w);
                    // A later loop that only adds terms to `acc` (`e += w * w` after
                    // `e += d * d`) leaves its adjoint as it is.
                    let passes =
                        matches!(other, Stmt::For { .. }) && !not_accumulated(other).contains(&acc);
                    for u in touched.into_iter().chain(w) {
                        if !(passes && u == acc) {
                            adj.insert(u, None);
                        }
                    }
                }
            }
        }
        match adj.remove(&acc) {
            None => Some(quote!(0.0)),
            Some(None) => None,
            Some(Some(terms)) if terms.is_empty() => Some(quote!(0.0)),
            Some(Some(terms)) => Some(quote!(#(#terms)+*)),
        }
    }

    /// Adds `(u, coefficient)` for each active leaf of `o`, with `o`'s coefficient `c` (`None`:
    /// one); the leaves of a subexpression that is not linear with stable coefficients go to
    /// `poison` instead.
    fn linear(
        &self,
        temps: &[Node],
        o: &Operand,
        c: Option<TokenStream>,
        stable: &dyn Fn(VarId) -> bool,
        out: &mut Vec<(VarId, Option<TokenStream>)>,
        poison: &mut Vec<VarId>,
    ) {
        let Operand::Var(v) = o else {
            return;
        };
        if !self.active[*v] {
            return;
        }
        let Some(node) = temps.iter().find(|n| n.id == *v) else {
            out.push((*v, c));
            return;
        };
        let neg = |c: &Option<TokenStream>| match c {
            Some(c) => Some(quote!(-(#c))),
            None => Some(quote!(-1.0)),
        };
        let times = |c: &Option<TokenStream>, k: TokenStream| match c {
            Some(c) => Some(quote!((#c) * (#k))),
            None => Some(k),
        };
        let act = |a: &Operand| matches!(a, Operand::Var(x) if self.active[*x]);
        if let Rhs::Op { op, args, .. } = &node.rhs {
            match (op, args.as_slice()) {
                (Op::Add, [a, b]) => {
                    self.linear(temps, a, c.clone(), stable, out, poison);
                    return self.linear(temps, b, c, stable, out, poison);
                }
                (Op::Sub, [a, b]) => {
                    self.linear(temps, a, c.clone(), stable, out, poison);
                    return self.linear(temps, b, neg(&c), stable, out, poison);
                }
                (Op::Neg, [a]) => return self.linear(temps, a, neg(&c), stable, out, poison),
                (Op::Mul, [a, b]) if !act(a) => {
                    if let Some(k) = self.render(temps, a, stable) {
                        return self.linear(temps, b, times(&c, k), stable, out, poison);
                    }
                }
                (Op::Mul, [a, b]) if !act(b) => {
                    if let Some(k) = self.render(temps, b, stable) {
                        return self.linear(temps, a, times(&c, k), stable, out, poison);
                    }
                }
                (Op::Div, [a, b]) if !act(b) => {
                    if let Some(k) = self.render(temps, b, stable) {
                        let k = quote!(1.0 / (#k));
                        return self.linear(temps, a, times(&c, k), stable, out, poison);
                    }
                }
                _ => {}
            }
        }
        operand_reads(temps, o, poison);
    }

    /// An inactive operand as an expression that can be evaluated before the loop.
    fn render(
        &self,
        temps: &[Node],
        o: &Operand,
        stable: &dyn Fn(VarId) -> bool,
    ) -> Option<TokenStream> {
        let f = self.f;
        match o {
            Operand::Const(t) => Some(quote!((#t))),
            Operand::Var(v) => match temps.iter().find(|n| n.id == *v) {
                None => {
                    // A variable: only one the statements before the loop have set.
                    (stable(*v) && self.w_before.contains(v) && f.vars[*v].sort == Sort::Float)
                        .then(|| {
                            let id = var_ident(&f.vars[*v], *v);
                            quote!(#id)
                        })
                }
                Some(node) => match &node.rhs {
                    Rhs::Op { op, args, int_arg } => {
                        let args = args
                            .iter()
                            .map(|a| self.render(temps, a, stable))
                            .collect::<Option<Vec<_>>>()?;
                        if let Some(c) = int_arg {
                            if !self.code_stable(c, stable) {
                                return None;
                            }
                        }
                        let e = op.forward(&args, int_arg.as_ref().map(|c| &c.tokens), node.span);
                        Some(quote!((#e)))
                    }
                    Rhs::Expr(c) if self.code_stable(c, stable) => {
                        let t = &c.tokens;
                        Some(quote!((#t)))
                    }
                    _ => None,
                },
            },
        }
    }

    /// Code that reads only variables set before the loop and never again.
    fn code_stable(&self, c: &Code, stable: &dyn Fn(VarId) -> bool) -> bool {
        c.reads.iter().all(|&r| {
            stable(r)
                && (self.w_before.contains(&r) || matches!(self.f.vars[r].role, Role::Param { .. }))
        })
    }
}

/// The variables loop `l` touches other than in `v = v ± term` updates of themselves (one
/// walk for all of them).
fn not_accumulated(l: &Stmt) -> BTreeSet<VarId> {
    let mut bad = BTreeSet::new();
    l.walk(&mut |s| {
        let own = match s {
            Stmt::Assign {
                place: Place::Var(p),
                ..
            } if accumulates(s, *p) => Some(*p),
            _ => None,
        };
        for u in shallow_reads(s).into_iter().chain(shallow_writes(s)) {
            if Some(u) != own {
                bad.insert(u);
            }
        }
    });
    bad
}

/// Whether `s` (itself, not nested statements) is `v = v + e`, `v = e + v` or `v = v - e`.
fn accumulates(s: &Stmt, v: VarId) -> bool {
    let Stmt::Assign {
        place: Place::Var(p),
        temps,
        value: Operand::Var(t),
        ..
    } = s
    else {
        return false;
    };
    if *p != v {
        return false;
    }
    let Some(node) = temps.iter().find(|n| n.id == *t) else {
        return false;
    };
    let Rhs::Op { op, args, .. } = &node.rhs else {
        return false;
    };
    let is_v = |o: &Operand| matches!(o, Operand::Var(x) if *x == v);
    let free = |o: &Operand| {
        let mut r = Vec::new();
        operand_reads(temps, o, &mut r);
        !r.contains(&v)
    };
    match (op, args.as_slice()) {
        (Op::Add, [a, b]) => (is_v(a) && free(b)) || (is_v(b) && free(a)),
        (Op::Sub, [a, b]) => is_v(a) && free(b),
        _ => false,
    }
}

/// Variables the statement itself writes (not its nested statements).
fn shallow_writes(s: &Stmt) -> Vec<VarId> {
    match s {
        Stmt::Assign {
            place: Place::Var(v),
            ..
        }
        | Stmt::Set { dst: v, .. } => vec![*v],
        Stmt::Assign {
            place: Place::Elem { buf, .. },
            ..
        }
        | Stmt::BufDecl { buf, .. } => vec![*buf],
        Stmt::For { index, .. } => vec![*index],
        _ => Vec::new(),
    }
}

/// The code that sets each range bound inside the loop (bounds are set once, right before their
/// loop), as text.
fn range_codes(l: &Stmt) -> HashMap<VarId, (String, Vec<VarId>)> {
    range_codes_of(std::slice::from_ref(l))
}

fn range_codes_of(stmts: &[Stmt]) -> HashMap<VarId, (String, Vec<VarId>)> {
    let mut out = HashMap::new();
    for l in stmts {
        l.walk(&mut |s| {
            if let Stmt::Set { dst, code, .. } = s {
                out.insert(*dst, (code.tokens.to_string(), value_reads(code)));
            }
        });
    }
    out
}

/// The buffers that statement `p` of block `b` overwrites entirely as far as the rest of the
/// block is concerned: `p` is a fill loop of the buffer (see [`private`]) and every later write
/// to it in the block is inside the filled range. After such a loop the buffer's earlier values
/// are dead for the rest of the block: the to-be-recorded analysis need not save what later
/// writes overwrite (the GMM's `qxcentered[r] += ...` after `qxcentered[j] = ...`), as the
/// fill's own saves restore every element the reverse sweep before it reads. Not when the fill
/// reads its result back from the buffer (`analyse::reused_root`): that value must survive.
pub fn killed_by_fill(b: &Block, p: usize, reuses: &dyn Fn(&Stmt) -> bool) -> Vec<VarId> {
    let Stmt::For {
        index,
        range,
        body,
        exit: None,
        ..
    } = &b.stmts[p]
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut later_writes = BTreeSet::new();
    for t in &b.stmts[p..] {
        writes(t, &mut later_writes);
    }
    let stable = |v: VarId| !later_writes.contains(&v);
    let sets = range_codes_of(&b.stmts);
    for s in &body.stmts {
        let Stmt::Assign {
            place: Place::Elem { buf, .. },
            ..
        } = s
        else {
            continue;
        };
        if out.contains(buf) || reuses(s) {
            continue;
        }
        if let Some(fill) = fill_range(*buf, *index, range, body, &sets, &stable) {
            if b.stmts[p + 1..]
                .iter()
                .all(|t| writes_within(*buf, t, &fill, &sets, &mut Vec::new()))
            {
                out.push(*buf);
            }
        }
    }
    out
}

/// For each block (by address), the first and last of its statements touching each variable
/// ([`touches`]), built once per block: asking for every variable of a large loop body stays
/// linear.
#[derive(Default)]
struct TouchIndex {
    spans: std::cell::RefCell<HashMap<usize, Spans>>,
}

/// First and last statement (by position) touching each variable.
type Spans = HashMap<VarId, (usize, usize)>;

impl TouchIndex {
    fn span(&self, b: &Block, v: VarId) -> Option<(usize, usize)> {
        let key = b as *const Block as usize;
        let mut spans = self.spans.borrow_mut();
        let map = spans.entry(key).or_insert_with(|| {
            let mut map = Spans::new();
            for (k, s) in b.stmts.iter().enumerate() {
                s.walk(&mut |t| {
                    for u in touch_reads(t).into_iter().chain(shallow_writes(t)) {
                        let e = map.entry(u).or_insert((k, k));
                        e.1 = k;
                    }
                });
            }
            map
        });
        map.get(&v).copied()
    }
}

/// The variables code reads for their values: reading only a buffer's length (`h.len()` in a
/// loop bound) does not count, as element writes leave it unchanged (and fused loops declare no
/// buffer).
fn value_reads(code: &Code) -> Vec<VarId> {
    code.reads
        .iter()
        .copied()
        .filter(|r| !code.shape_only.contains(r))
        .collect()
}

/// What a statement itself reads, in the sense of [`touches`].
fn touch_reads(s: &Stmt) -> Vec<VarId> {
    match s {
        Stmt::Set { code, .. } => value_reads(code),
        _ => shallow_reads(s),
    }
}

/// Whether `s` reads (for its value, [`value_reads`]) or writes `v`.
fn touches(s: &Stmt, v: VarId) -> bool {
    let mut found = false;
    s.walk(&mut |t| {
        found = found || touch_reads(t).contains(&v) || shallow_writes(t).contains(&v);
    });
    found
}

/// Buffers declared by a statement at the top level of loop body `body` and nowhere else in
/// `f`: new in every iteration, with one declaration's length (a fused loop's private buffers,
/// whose adjoints take that length, `Buffer::fit`).
pub fn own_buffers(f: &Func, body: &Block) -> BTreeSet<VarId> {
    let mut decls: HashMap<VarId, usize> = HashMap::new();
    f.body.walk(&mut |s| {
        if let Stmt::BufDecl { buf, .. } = s {
            *decls.entry(*buf).or_default() += 1;
        }
    });
    body.stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::BufDecl { buf, .. } if decls[buf] == 1 => Some(*buf),
            _ => None,
        })
        .collect()
}

/// Whether every read of `v` in an iteration of block `b` sees a value written earlier in the
/// same iteration, or one nothing in the loop ever writes.
///
/// - A scalar: the first statement of `b` touching it is a definition that does not read it
///   (a `let`, a plain assignment, a loop header for its index).
/// - A buffer: the first statement touching it is a **fill**, `for j in lo..hi { ...; v[j] =
///   e; ... }` (the write unconditional, nothing else in the fill touching `v`, bounds that do
///   not change during the loop), and every later write to `v` is `v[k]` with `k` the index of
///   an enclosing loop over `lo'..hi` with `lo'` = `lo` or `lo` = 0 (a part of the filled range).
///   Elements outside the range are never written, so reading them sees the value from before
///   the loop.
/// - A buffer the body declares: the declaration is the first statement touching it.
/// - Either: the first statement touching it is a loop in whose body `v` is private, or an `if`
///   in each of whose branches it is private (a `let` inside one branch), and nothing after that
///   statement in `b` touches it.
fn private(
    v: VarId,
    b: &Block,
    sets: &HashMap<VarId, (String, Vec<VarId>)>,
    stable: &dyn Fn(VarId) -> bool,
    touch: &TouchIndex,
) -> bool {
    let Some((first, last)) = touch.span(b, v) else {
        return true;
    };
    let s = &b.stmts[first];
    let rest = &b.stmts[first + 1..];
    match s {
        Stmt::Assign {
            place: Place::Var(p),
            ..
        } if *p == v => !stmt_reads(s).contains(&v),
        Stmt::Set { dst, code, .. } if *dst == v => !code.reads.contains(&v),
        Stmt::BufDecl { buf, init, .. } if *buf == v => !init.reads.contains(&v),
        Stmt::For { index, .. } if *index == v => true,
        // `let a = if c { .. } else { .. };`: both branches define it first. Or nothing after
        // the `if` touches it and it is private to each branch (a `let` inside one branch).
        Stmt::If {
            then_branch,
            else_branch,
            ..
        } => {
            (defines_first(v, then_branch, touch) && defines_first(v, else_branch, touch))
                || (last == first
                    && private(v, then_branch, sets, stable, touch)
                    && private(v, else_branch, sets, stable, touch))
        }
        Stmt::For {
            index, range, body, ..
        } => {
            if let Some(fill) = fill_range(v, *index, range, body, sets, stable) {
                let mut ok = true;
                for t in rest {
                    ok &= writes_within(v, t, &fill, sets, &mut Vec::new());
                }
                ok
            } else {
                last == first && private(v, body, sets, stable, touch)
            }
        }
        _ => false,
    }
}

/// Whether the first statement of `b` touching `v` assigns it without reading it.
fn defines_first(v: VarId, b: &Block, touch: &TouchIndex) -> bool {
    let Some((first, _)) = touch.span(b, v) else {
        return false;
    };
    let s = &b.stmts[first];
    match s {
        Stmt::Assign {
            place: Place::Var(p),
            ..
        } if *p == v => !stmt_reads(s).contains(&v),
        Stmt::Set { dst, code, .. } if *dst == v => !code.reads.contains(&v),
        _ => false,
    }
}

/// The range `(lo, hi)` (as code text) that loop `index in range { body }` fills in buffer `v`.
fn fill_range(
    v: VarId,
    index: VarId,
    range: &LoopRange,
    body: &Block,
    sets: &HashMap<VarId, (String, Vec<VarId>)>,
    stable: &dyn Fn(VarId) -> bool,
) -> Option<(String, String)> {
    if range
        .adapters
        .iter()
        .any(|a| matches!(a, Adapter::StepBy(_)))
    {
        return None;
    }
    let (lo, lo_reads) = sets.get(&range.start)?;
    let (hi, hi_reads) = sets.get(&range.end)?;
    if !lo_reads.iter().chain(hi_reads).all(|&r| stable(r)) {
        return None;
    }
    let mut fills = 0;
    for s in &body.stmts {
        match s {
            Stmt::Assign {
                place: Place::Elem { buf, index: i },
                temps,
                value,
                ..
            } if *buf == v => {
                let mut r = Vec::new();
                operand_reads(temps, value, &mut r);
                if r.contains(&v) || !is_index(i, index) {
                    return None;
                }
                fills += 1;
            }
            other if touches(other, v) => return None,
            _ => {}
        }
    }
    (fills == 1).then(|| (lo.clone(), hi.clone()))
}

/// Whether index code is exactly the variable `k`.
pub fn is_index(i: &Code, k: VarId) -> bool {
    i.reads == [k] && i.tokens.clone().into_iter().count() == 1
}

/// Whether the reverse iterations of loop `l` (replayed, not fused) may run in ascending
/// order, as far as the variables the loop writes are concerned: each reverse iteration then
/// reads only adjoints that no other reverse iteration changes, and adds to adjoints that the
/// others only add to, so the iterations commute (up to the order in which contributions to
/// one adjoint are summed). The emitter adds the other condition: nothing in the loop is
/// restored from a tape or a slot (the loop's values then stay what the forward sweep left,
/// in any order), and nothing pops `__temps`.
///
/// Running ascending is what a hand-written adjoint does with such a loop (`w_bar[j] += g *
/// x[j]`), and LLVM vectorises it where the descending version stays scalar: the inner loop of
/// a logistic regression's gradient took 1.28 × the hand-written adjoint's time descending
/// and 1.02 × ascending. The loop qualifies when it has a plain range, no early exit, no
/// `if`, `while`, call or buffer declaration inside, and every variable it writes is
///
/// - its index, or the index of a nested loop;
/// - an **accumulator**: an active float the loop only updates as `v = v ± e` (its adjoint is
///   the same in every reverse iteration);
/// - **private**: written before it is read in every iteration ([`private`]), and touched
///   nowhere outside the loop (its adjoint is zero when each reverse iteration starts);
/// - a buffer written and read inside the loop only at the loop's index (`h[j]`): each reverse
///   iteration reads and zeroes the adjoint of its own element only.
pub fn reverse_commutes(f: &Func, active: &[bool], l: &Stmt) -> bool {
    let Stmt::For {
        index,
        range,
        body,
        exit: None,
        ..
    } = l
    else {
        return false;
    };
    if !range.adapters.is_empty() {
        return false;
    }
    let mut ok = true;
    l.walk(&mut |s| match s {
        Stmt::While { .. }
        | Stmt::BufDecl { .. }
        | Stmt::If { .. }
        | Stmt::For { exit: Some(_), .. } => ok = false,
        Stmt::Assign { temps, .. } => {
            ok &= !temps.iter().any(|n| matches!(n.rhs, Rhs::Call { .. }));
        }
        _ => {}
    });
    if !ok {
        return false;
    }
    let mut w = BTreeSet::new();
    writes(l, &mut w);
    let bad = not_accumulated(l);
    let (mut inside, mut all) = (HashMap::new(), HashMap::new());
    l.walk(&mut |t| crate::analyse::count_touches(t, &mut inside));
    f.body
        .walk(&mut |t| crate::analyse::count_touches(t, &mut all));
    let confined = |v: VarId| inside.get(&v) == all.get(&v);
    let sets = range_codes(l);
    let stable = |v: VarId| !w.contains(&v);
    let touch = TouchIndex::default();
    w.iter().all(|&v| {
        if v == *index {
            return true;
        }
        match f.vars[v].sort {
            Sort::Buffer => only_at_index(l, v, *index),
            Sort::Float if active[v] && !bad.contains(&v) => true,
            _ => confined(v) && private(v, body, &sets, &stable, &touch),
        }
    })
}

/// Whether every element write and every load of buffer `v` inside `l` is at index `i`, and
/// no other code inside `l` reads `v`.
fn only_at_index(l: &Stmt, v: VarId, i: VarId) -> bool {
    let mut ok = true;
    l.walk(&mut |s| match s {
        Stmt::Assign {
            place,
            temps,
            value,
            ..
        } => {
            if let Place::Elem { buf, index } = place {
                ok &= *buf != v || is_index(index, i);
                ok &= !index.reads.contains(&v);
            }
            for n in temps {
                match &n.rhs {
                    Rhs::Load { buf, index } => {
                        ok &= (*buf != v || is_index(index, i)) && !index.reads.contains(&v)
                    }
                    Rhs::Op { args, int_arg, .. } => {
                        ok &= !args.iter().any(|a| a.var() == Some(v));
                        ok &= !int_arg.as_ref().is_some_and(|c| c.reads.contains(&v));
                    }
                    Rhs::Expr(c) => ok &= !c.reads.contains(&v),
                    Rhs::Call { .. } => ok = false,
                }
            }
            ok &= value.var() != Some(v);
        }
        Stmt::Set { code, .. } | Stmt::Plain(code) => ok &= !value_reads(code).contains(&v),
        _ => {}
    });
    ok
}

/// Whether every write to buffer `v` in `s` is at an index inside the filled range `fill`;
/// `loops` holds the enclosing loops (index, lo text, hi text).
fn writes_within(
    v: VarId,
    s: &Stmt,
    fill: &(String, String),
    sets: &HashMap<VarId, (String, Vec<VarId>)>,
    loops: &mut Vec<(VarId, String, String)>,
) -> bool {
    match s {
        Stmt::Assign {
            place: Place::Elem { buf, index },
            ..
        } if *buf == v => loops.iter().any(|(k, lo, hi)| {
            is_index(index, *k) && *hi == fill.1 && (*lo == fill.0 || fill.0 == "0")
        }),
        Stmt::If {
            then_branch,
            else_branch,
            ..
        } => then_branch
            .stmts
            .iter()
            .chain(&else_branch.stmts)
            .all(|t| writes_within(v, t, fill, sets, loops)),
        Stmt::For {
            index, range, body, ..
        } => {
            let bounds = (sets.get(&range.start), sets.get(&range.end));
            let pushed = if let (Some((lo, _)), Some((hi, _))) = bounds {
                loops.push((*index, lo.clone(), hi.clone()));
                true
            } else {
                false
            };
            let ok = body
                .stmts
                .iter()
                .all(|t| writes_within(v, t, fill, sets, loops));
            if pushed {
                loops.pop();
            }
            ok
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use crate::errors::Errors;
    use syn::parse_quote;

    /// How many of the function's top-level loops are fused.
    fn fused(item: syn::ItemFn) -> usize {
        let mut cx = Errors::default();
        let f = crate::lower::lower(&item, &Default::default(), &mut cx).expect("lowers");
        assert!(!cx.has_errors());
        crate::analyse::analyse(&f).fused.len()
    }

    #[test]
    fn sums_over_read_only_slices_are_fused() {
        let f = parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() - 1 {
                    let a = x[i + 1] - x[i] * x[i];
                    s += a * a;
                }
                s
            }
        };
        assert_eq!(fused(f), 1);
    }

    #[test]
    fn linear_uses_after_the_loop_are_fused() {
        let f = parse_quote! {
            fn f(x: &[f64], c: f64) -> f64 {
                let n = x.len();
                let k = 2.0;
                let mut s = 0.0;
                let mut t = 0.0;
                for i in 0..n {
                    s += x[i].sin();
                    t -= x[i] * c;
                }
                (s - k * t) / n as f64 + c * c
            }
        };
        assert_eq!(fused(f), 1);
    }

    #[test]
    fn buffers_filled_before_they_are_read_are_private() {
        let f = parse_quote! {
            fn f(w: &[f64], xs: &[f64], m: usize) -> f64 {
                let mut h = vec![0.0; m];
                let mut q = vec![0.0; m];
                let mut loss = 0.0;
                for s in 0..xs.len() {
                    for j in 0..m {
                        let mut z = 0.0;
                        for i in 0..m {
                            z += w[j * m + i] * xs[s];
                        }
                        h[j] = z.tanh();
                    }
                    for j in 0..m {
                        q[j] = h[j] * 2.0;
                    }
                    for j in 0..m {
                        for r in j + 1..m {
                            q[r] += h[j] * q[j];
                        }
                    }
                    for j in 0..m {
                        loss += q[j] * q[j];
                    }
                }
                loss
            }
        };
        assert_eq!(fused(f), 1);
    }

    #[test]
    fn branches_and_length_bounds_keep_values_private() {
        let f = parse_quote! {
            fn f(x: &[f64], m: usize) -> f64 {
                let mut h = vec![0.0; m];
                let mut s = 0.0;
                for i in 0..x.len() {
                    let a = if x[i] > 0.0 { x[i] * 2.0 } else { -x[i] };
                    for j in 0..h.len() {
                        h[j] = a * j as f64;
                    }
                    for j in 0..h.len() {
                        s += h[j] * h[j];
                    }
                }
                s
            }
        };
        assert_eq!(fused(f), 1);
        // Defined in one branch only: the other reads the previous iteration's value.
        let one_branch = parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let mut a = 0.0;
                let mut s = 0.0;
                for i in 0..x.len() {
                    if x[i] > 0.0 {
                        a = x[i];
                    }
                    s += a * x[i];
                }
                s
            }
        };
        assert_eq!(fused(one_branch), 0);
    }

    /// One sum used non-linearly after the loop: fused, its seed deferred, with the slice's
    /// shadow scaled and the scalar's adjoint kept apart.
    #[test]
    fn non_linear_uses_defer_the_seed() {
        let f: syn::ItemFn = parse_quote! {
            fn f(x: &[f64], c: f64) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() {
                    s += (c * x[i]).exp();
                }
                s.ln() * c
            }
        };
        let mut cx = Errors::default();
        let f = crate::lower::lower(&f, &Default::default(), &mut cx).expect("lowers");
        let facts = crate::analyse::analyse(&f);
        let plans: Vec<_> = facts.fused.values().collect();
        let [plan] = plans.as_slice() else {
            panic!("one fused loop: {plans:?}");
        };
        let d = plan.deferred.as_ref().expect("deferred");
        let name = |v: &usize| f.vars[*v].name.clone();
        assert_eq!(name(&d.acc), "s");
        assert_eq!(d.scaled.iter().map(name).collect::<Vec<_>>(), ["x"]);
        assert_eq!(d.scalars.iter().map(name).collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn loop_carried_values_are_not_fused() {
        // The buffer is read before the iteration writes it.
        let carried = parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let mut h = [1.0; 1];
                let mut s = 0.0;
                for i in 0..x.len() {
                    let prev = h[0];
                    h[0] = x[i] * prev;
                    s += h[0];
                }
                s
            }
        };
        assert_eq!(fused(carried), 0);
        // A recurrence.
        let recurrence = parse_quote! {
            fn f(x: f64, n: usize) -> f64 {
                let mut y = x;
                for _ in 0..n {
                    y = y * (1.0 - y);
                }
                y
            }
        };
        assert_eq!(fused(recurrence), 0);
        // The sum is used non-linearly after the loop, and the slice again: a deferred seed
        // would scale the later statement's contribution too.
        let squared = parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() {
                    s += x[i];
                }
                s * s + x[0]
            }
        };
        assert_eq!(fused(squared), 0);
        // Two sums used non-linearly.
        let two = parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let mut s = 0.0;
                let mut t = 0.0;
                for i in 0..x.len() {
                    s += x[i];
                    t += x[i] * x[i];
                }
                s * t
            }
        };
        assert_eq!(fused(two), 0);
        // A value the loop reads is redefined after it.
        let redefined = parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let mut c = x[0];
                let mut s = 0.0;
                for i in 0..x.len() {
                    s += c * x[i];
                }
                c = c * 3.0;
                s + c
            }
        };
        assert_eq!(fused(redefined), 0);
        // The reverse of an earlier statement needs a value the loop overwrites.
        let overwritten = parse_quote! {
            fn f(x: &[f64]) -> f64 {
                let mut z = x[0] * x[0];
                let y = z.sin();
                let mut s = 0.0;
                for i in 0..x.len() {
                    z = x[i];
                    s += z * z;
                }
                s + y
            }
        };
        assert_eq!(fused(overwritten), 0);
        // Partial fills do not make a buffer private.
        let partial = parse_quote! {
            fn f(x: &[f64], m: usize) -> f64 {
                let mut h = vec![0.0; m + 1];
                let mut s = 0.0;
                for i in 0..x.len() {
                    for j in 0..m {
                        h[j + 1] = x[i] * h[j];
                    }
                    s += h[m];
                }
                s
            }
        };
        assert_eq!(fused(partial), 0);
    }
}
