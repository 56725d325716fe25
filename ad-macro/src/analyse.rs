//! Analyses over the IR: which values are active, which the reverse sweep reads, and how each
//! of those reads is served.
//!
//! - **Activity** (forward): a variable is active when some assignment gives it a value that
//!   depends on an active parameter. Inactive code gets no adjoint.
//! - **Recomputation**: a variable defined once, at the top level of a loop body, from values that
//!   the rest of the body does not overwrite, is recomputed at the start of that body's reverse
//!   iteration instead of being stored (the `a` and `b` of extended Rosenbrock).
//! - **Needed values**: the variables whose values the reverse sweep reads: operands of rules
//!   whose partials depend on values, indices of active loads and stores, branch flags, loop
//!   bounds, trip counts, operands of recomputations.
//! - **To-be-recorded** (Tapenade's TBR, over structured control flow): an assignment must save
//!   the value it overwrites exactly when a needed read of that value can precede it with no
//!   other assignment in between. The reverse sweep then restores values in reverse order, so
//!   at every reverse point each needed variable holds its forward value. A saving assignment
//!   executed at most once uses a local slot; inside a loop it pushes on a tape.

use std::collections::BTreeSet;

use crate::intrinsics::value_needs;
use crate::ir::*;

/// How an assignment keeps the value it overwrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Save {
    /// Not needed by the reverse sweep.
    No,
    /// Executed at most once: one local variable.
    Slot,
    /// Inside a loop: a tape.
    Tape,
}

#[derive(Debug)]
pub struct Facts {
    pub active: Vec<bool>,
    pub needed: Vec<bool>,
    /// Variables recomputed at the start of their loop body's reverse iteration.
    pub recompute: Vec<bool>,
    /// For a recomputed variable: the site of its defining `let` (which saves nothing) and the
    /// values the recomputation reads.
    pub recompute_site: Vec<Option<SiteId>>,
    pub recompute_reads: Vec<Vec<VarId>>,
    /// `for` loops (by id) re-run with a recomputed variable: the variable they accumulate.
    pub recompute_loop: Vec<Option<VarId>>,
    pub save: Vec<Save>,
    /// Tape saves moved to the end of their loop's iteration ([`end_saves`]): the site saves
    /// nothing where it runs; the loop body saves the variable's final value after its last
    /// statement, and the reverse iteration loads it first.
    pub end_save: BTreeSet<SiteId>,
    site_in_loop: Vec<bool>,
    /// Sites inside a fused loop.
    site_in_fused: Vec<bool>,
    /// Top-level loops whose iterations run their reverse right after their forward
    /// (`fuse.rs`), by id.
    pub fused: std::collections::HashMap<SiteId, crate::fuse::Fused>,
    /// Fused loops that overwrite a value the reverse sweep of earlier statements reads.
    violations: BTreeSet<SiteId>,
    /// `relevant` of every statement, by address (the IR does not move once analysed), so that
    /// deeply nested bodies are not re-walked for every enclosing region.
    relevance: std::collections::HashMap<usize, bool>,
}

impl Facts {
    /// Whether an assignment site is inside a fused loop.
    pub fn in_fused(&self, site: SiteId) -> bool {
        self.site_in_fused[site]
    }

    /// Whether an assignment site may run more than once between the sweeps: inside a loop
    /// that replays (a fused loop's own top level runs once per forward-reverse pair).
    pub fn in_loop(&self, site: SiteId) -> bool {
        self.site_in_loop[site]
    }

    /// Whether a statement has anything to do in the reverse sweep.
    pub fn relevant(&self, f: &Func, s: &Stmt) -> bool {
        match self.relevance.get(&(s as *const Stmt as usize)) {
            Some(r) => *r,
            None => self.relevant_uncached(f, s),
        }
    }

    /// Fills the relevance cache, children before parents.
    fn cache_relevance(&mut self, f: &Func) {
        fn visit(facts: &mut Facts, f: &Func, b: &Block) {
            for s in &b.stmts {
                match s {
                    Stmt::If {
                        then_branch,
                        else_branch,
                        ..
                    } => {
                        visit(facts, f, then_branch);
                        visit(facts, f, else_branch);
                    }
                    Stmt::For { body, .. } => visit(facts, f, body),
                    Stmt::While { cond, body, .. } => {
                        visit(facts, f, cond);
                        visit(facts, f, body);
                    }
                    _ => {}
                }
                let r = facts.relevant_uncached(f, s);
                facts.relevance.insert(s as *const Stmt as usize, r);
            }
        }
        self.relevance.clear();
        visit(self, f, &f.body);
    }

    fn relevant_uncached(&self, f: &Func, s: &Stmt) -> bool {
        match s {
            Stmt::Assign { site, place, .. } => {
                self.place_active(place) || self.save[*site] != Save::No
            }
            Stmt::Set { site, dst, .. } => self.active[*dst] || self.save[*site] != Save::No,
            // (Its reverse zeroes its adjoint for the iteration before, in a loop.)
            Stmt::BufDecl { site, buf, .. } => {
                (self.active[*buf] && (self.site_in_loop[*site] || self.site_in_fused[*site]))
                    || self.save[*site] != Save::No
            }
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => self.block_relevant(f, then_branch) || self.block_relevant(f, else_branch),
            Stmt::For { body, exit, .. } => {
                self.block_relevant(f, body)
                    || exit.as_ref().is_some_and(|e| self.save[e.site] != Save::No)
            }
            Stmt::While { body, site, .. } => {
                self.block_relevant(f, body) || self.save[*site] != Save::No
            }
            Stmt::Plain(_) => false,
        }
    }

    pub fn block_relevant(&self, f: &Func, b: &Block) -> bool {
        b.stmts.iter().any(|s| self.relevant(f, s))
    }

    pub fn place_active(&self, place: &Place) -> bool {
        match place {
            Place::Var(v) => self.active[*v],
            Place::Elem { buf, .. } => self.active[*buf],
        }
    }

    pub fn operand_active(&self, o: &Operand) -> bool {
        matches!(o, Operand::Var(v) if self.active[*v])
    }
}

pub fn analyse(f: &Func) -> Facts {
    let mut excluded = BTreeSet::new();
    loop {
        let facts = analyse_with(f, &excluded);
        if facts.violations.is_empty() {
            return facts;
        }
        excluded.extend(facts.violations.iter().copied());
    }
}

/// The analyses, with loops `excluded` from fusion.
fn analyse_with(f: &Func, excluded: &BTreeSet<SiteId>) -> Facts {
    let n = f.vars.len();
    let mut facts = Facts {
        active: vec![false; n],
        needed: vec![false; n],
        recompute: vec![false; n],
        recompute_site: vec![None; n],
        recompute_reads: vec![Vec::new(); n],
        recompute_loop: vec![None; f.n_sites],
        save: vec![Save::No; f.n_sites],
        end_save: Default::default(),
        site_in_loop: vec![false; f.n_sites],
        site_in_fused: vec![false; f.n_sites],
        fused: Default::default(),
        violations: Default::default(),
        relevance: Default::default(),
    };
    for p in &f.params {
        facts.active[p.var] = p.active;
    }
    activity(f, &mut facts);
    usefulness(f, &mut facts);
    facts.fused = crate::fuse::plan(f, &facts.active, excluded);
    let mut defs = vec![0usize; n];
    // A fused loop's body runs its reverse in the same iteration: its own sites save in slots.
    let fused: BTreeSet<SiteId> = facts.fused.keys().copied().collect();
    count_defs(&f.body, false, &fused, &mut defs, &mut facts.site_in_loop);
    for s in &f.body.stmts {
        if matches!(s, Stmt::For { id, .. } if fused.contains(id)) {
            s.walk(&mut |t| {
                if let Stmt::Assign { site, .. } | Stmt::BufDecl { site, .. } = t {
                    facts.site_in_fused[*site] = true;
                }
            });
        }
    }
    recomputable(f, &f.body, false, false, &defs, &mut facts);
    // Needed values and saving sites depend on each other through relevance; both only grow.
    loop {
        let before = (facts.needed.clone(), facts.save.clone());
        facts.cache_relevance(f);
        let mut needed = vec![false; n];
        needed_block(f, &facts, &f.body, &mut needed);
        // Recomputed variables read their operands in the reverse sweep.
        loop {
            let mut changed = false;
            for v in 0..n {
                if facts.recompute[v] && needed[v] {
                    for &r in &facts.recompute_reads[v] {
                        if !needed[r] {
                            needed[r] = true;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for (a, b) in facts.needed.iter_mut().zip(&needed) {
            *a |= *b;
        }
        let mut tbr = Tbr {
            f,
            facts: &mut facts,
            gens: Default::default(),
            kills: Default::default(),
        };
        tbr.block(&f.body, &mut BTreeSet::new(), true);
        if (facts.needed.clone(), facts.save.clone()) == before {
            break;
        }
    }
    facts.cache_relevance(f);
    facts.end_save = end_saves(f, &facts);
    facts
}

/// Saves of variables private to the iterations of a replayed `for` loop, moved to the end of
/// the iteration.
///
/// A variable every touch of which is inside the body of a `for` loop, first written there by
/// a definition at the top level of the body (`let mut acc = 0.0;` before an inner loop adds
/// to it), holds nothing from one iteration to the next: its value at the start of an
/// iteration is dead, and so is its value after the loop. The definition saves the value it
/// overwrites only for the reverse of the *previous* iteration, which reads the value that
/// iteration ended with. Saving that value at the end of each iteration instead, and loading it
/// at the start of each reverse iteration, keeps the same values for the same reads, and the
/// variable is no longer live across iterations, the loop, or the rest of the function (where
/// LLVM, with a value live across calls, kept a matrix product's accumulator in memory through
/// its inner loop: 4 × the hand-written adjoint).
///
/// Pushes stay last-in first-out: the end save is the iteration's last push of the variable,
/// and the reverse iteration pops it first.
fn end_saves(f: &Func, facts: &Facts) -> BTreeSet<SiteId> {
    type Counts = std::collections::HashMap<VarId, usize>;
    fn own(s: &Stmt, c: &mut Counts) {
        count_touches(s, c);
        let stop = match s {
            Stmt::For { exit: Some(e), .. } => Some(&e.stop),
            Stmt::While { stop, .. } => stop.as_ref(),
            _ => None,
        };
        for &v in stop.iter().flat_map(|c| &c.reads) {
            *c.entry(v).or_default() += 1;
        }
    }
    /// Adds `from`'s counts to `into`'s, moving the smaller map into the larger: each count
    /// then moves O(log n) times in all, where nested regions merging their children's counts
    /// into their own made the analysis quadratic in the depth (8,000 operations of `if`s
    /// nested 2,000 deep: 171 ms, most of it here).
    fn merge(into: &mut Counts, mut from: Counts) {
        if from.len() > into.len() {
            std::mem::swap(into, &mut from);
        }
        for (v, n) in from {
            *into.entry(v).or_default() += n;
        }
    }
    struct Cx<'a> {
        f: &'a Func,
        facts: &'a Facts,
        total: Counts,
        out: BTreeSet<SiteId>,
    }
    fn block(cx: &mut Cx, b: &Block, replayed_body: bool) -> Counts {
        let mut acc = Counts::new();
        let mut candidates = Vec::new();
        for s in &b.stmts {
            if replayed_body {
                if let Some((v, site)) = top_def(s) {
                    let var = &cx.f.vars[v];
                    if cx.facts.save[site] == Save::Tape
                        && !acc.contains_key(&v)
                        && !stmt_reads(s).contains(&v)
                        && !cx.facts.recompute[v]
                        && matches!(var.role, Role::Local | Role::Hidden)
                        && matches!(var.sort, Sort::Float | Sort::Int | Sort::Bool)
                    {
                        candidates.push((site, v));
                    }
                }
            }
            let c = stmt(cx, s);
            merge(&mut acc, c);
        }
        for (site, v) in candidates {
            if acc.get(&v) == cx.total.get(&v) {
                cx.out.insert(site);
            }
        }
        acc
    }
    fn stmt(cx: &mut Cx, s: &Stmt) -> Counts {
        let mut c = Counts::new();
        own(s, &mut c);
        match s {
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                let t = block(cx, then_branch, false);
                merge(&mut c, t);
                let e = block(cx, else_branch, false);
                merge(&mut c, e);
            }
            Stmt::For { id, body, .. } => {
                let replayed = !cx.facts.fused.contains_key(id);
                let b = block(cx, body, replayed);
                merge(&mut c, b);
            }
            Stmt::While { cond, body, .. } => {
                let k = block(cx, cond, false);
                merge(&mut c, k);
                let b = block(cx, body, false);
                merge(&mut c, b);
            }
            _ => {}
        }
        c
    }
    let mut total = Counts::new();
    f.body.walk(&mut |s| own(s, &mut total));
    let mut cx = Cx {
        f,
        facts,
        total,
        out: BTreeSet::new(),
    };
    block(&mut cx, &f.body, false);
    cx.out
}

// ----- activity -----

fn activity(f: &Func, facts: &mut Facts) {
    loop {
        let mut changed = false;
        f.body.walk(&mut |s| {
            if let Stmt::Assign {
                place,
                temps,
                value,
                ..
            } = s
            {
                for node in temps {
                    let a = match &node.rhs {
                        Rhs::Op { op, args, .. } => {
                            !op.piecewise_constant() && args.iter().any(|o| facts.operand_active(o))
                        }
                        Rhs::Load { buf, .. } => facts.active[*buf],
                        Rhs::Call { args, .. } => args.iter().any(|a| match a {
                            CallArg::Float(o) => facts.operand_active(o),
                            CallArg::Slice(v) => facts.active[*v],
                            CallArg::Other(_) => false,
                        }),
                        Rhs::Expr(_) => false,
                    };
                    if a && !facts.active[node.id] {
                        facts.active[node.id] = true;
                        changed = true;
                    }
                }
                if facts.operand_active(value) {
                    let target = match place {
                        Place::Var(v) => *v,
                        Place::Elem { buf, .. } => *buf,
                    };
                    if !facts.active[target] {
                        facts.active[target] = true;
                        changed = true;
                    }
                }
            }
        });
        if !changed {
            break;
        }
    }
}

/// Backward activity: a value whose adjoint can reach the result. Values no assignment that
/// matters reads (a dead `let`, an unused branch local) get no adjoint: it would be zero, and
/// a zero adjoint times an infinite partial (`cbrt` at 0) is NaN.
fn usefulness(f: &Func, facts: &mut Facts) {
    let mut useful = vec![false; f.vars.len()];
    useful[f.ret] = true;
    loop {
        let mut changed = false;
        f.body.walk(&mut |s| {
            if let Stmt::Assign {
                place,
                temps,
                value,
                ..
            } = s
            {
                let target = match place {
                    Place::Var(v) => *v,
                    Place::Elem { buf, .. } => *buf,
                };
                if !useful[target] {
                    return;
                }
                let mut reads = Vec::new();
                operand_reads(temps, value, &mut reads);
                for r in reads {
                    if facts.active[r] && !useful[r] {
                        useful[r] = true;
                        changed = true;
                    }
                }
            }
        });
        if !changed {
            break;
        }
    }
    for (v, var) in f.vars.iter().enumerate() {
        let keep = matches!(var.role, Role::Param { .. } | Role::Temp);
        if !keep && !useful[v] {
            facts.active[v] = false;
        }
    }
}

// ----- definitions and recomputation -----

/// The variable a statement assigns as a whole (not buffer elements).
pub fn defined_var(s: &Stmt) -> Option<VarId> {
    match s {
        Stmt::Assign {
            place: Place::Var(v),
            ..
        } => Some(*v),
        Stmt::Set { dst, .. } => Some(*dst),
        _ => None,
    }
}

fn count_defs(
    b: &Block,
    in_loop: bool,
    fused: &BTreeSet<SiteId>,
    defs: &mut [usize],
    site_in_loop: &mut [bool],
) {
    for s in &b.stmts {
        match s {
            Stmt::Assign { site, place, .. } => {
                site_in_loop[*site] = in_loop;
                match place {
                    Place::Var(v) => defs[*v] += 1,
                    Place::Elem { buf, .. } => defs[*buf] += 1,
                }
            }
            Stmt::Set { site, dst, .. } => {
                site_in_loop[*site] = in_loop;
                defs[*dst] += 1;
            }
            Stmt::BufDecl { site, buf, .. } => {
                site_in_loop[*site] = in_loop;
                defs[*buf] += 1;
            }
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                count_defs(then_branch, in_loop, fused, defs, site_in_loop);
                count_defs(else_branch, in_loop, fused, defs, site_in_loop);
            }
            Stmt::For {
                id,
                body,
                exit,
                index,
                ..
            } => {
                defs[*index] += 1;
                if let Some(e) = exit {
                    site_in_loop[e.site] = in_loop;
                    defs[e.trips] += 1;
                }
                let inner = in_loop || !fused.contains(id);
                count_defs(body, inner, fused, defs, site_in_loop);
            }
            Stmt::While {
                cond,
                body,
                site,
                trips,
                ..
            } => {
                site_in_loop[*site] = in_loop;
                defs[*trips] += 1;
                count_defs(cond, true, fused, defs, site_in_loop);
                count_defs(body, true, fused, defs, site_in_loop);
            }
            Stmt::Plain(_) => {}
        }
    }
}

/// Every variable (and buffer) a statement writes, nested statements included.
pub fn writes(s: &Stmt, out: &mut BTreeSet<VarId>) {
    match s {
        Stmt::Assign {
            place: Place::Var(v),
            ..
        }
        | Stmt::Set { dst: v, .. } => {
            out.insert(*v);
        }
        Stmt::Assign {
            place: Place::Elem { buf, .. },
            ..
        }
        | Stmt::BufDecl { buf, .. } => {
            out.insert(*buf);
        }
        Stmt::If {
            then_branch,
            else_branch,
            ..
        } => {
            then_branch
                .stmts
                .iter()
                .chain(&else_branch.stmts)
                .for_each(|s| writes(s, out));
        }
        Stmt::For {
            index, body, exit, ..
        } => {
            out.insert(*index);
            if let Some(e) = exit {
                out.insert(e.trips);
            }
            body.stmts.iter().for_each(|s| writes(s, out));
        }
        Stmt::While {
            cond, body, trips, ..
        } => {
            out.insert(*trips);
            cond.stmts
                .iter()
                .chain(&body.stmts)
                .for_each(|s| writes(s, out));
        }
        Stmt::Plain(_) => {}
    }
}

/// Every variable a statement's forward computation reads (for assignments: through its temps).
pub fn stmt_reads(s: &Stmt) -> Vec<VarId> {
    let mut out = Vec::new();
    match s {
        Stmt::Assign {
            place,
            temps,
            value,
            ..
        } => {
            operand_reads(temps, value, &mut out);
            if let Place::Elem { index, .. } = place {
                out.extend(&index.reads);
            }
        }
        Stmt::Set { code, .. } | Stmt::BufDecl { init: code, .. } => out.extend(&code.reads),
        _ => {}
    }
    out
}

/// The variables an operand's value is computed from, through the statement's temporaries.
pub fn operand_reads(temps: &[Node], o: &Operand, out: &mut Vec<VarId>) {
    if let Operand::Var(v) = o {
        match temps.iter().find(|n| n.id == *v) {
            Some(node) => rhs_reads(temps, &node.rhs, out),
            None => out.push(*v),
        }
    }
}

fn rhs_reads(temps: &[Node], rhs: &Rhs, out: &mut Vec<VarId>) {
    match rhs {
        Rhs::Op { args, int_arg, .. } => {
            for a in args {
                operand_reads(temps, a, out);
            }
            if let Some(c) = int_arg {
                out.extend(&c.reads);
            }
        }
        Rhs::Load { buf, index } => {
            out.push(*buf);
            out.extend(&index.reads);
        }
        Rhs::Call { args, .. } => {
            for a in args {
                match a {
                    CallArg::Float(o) => operand_reads(temps, o, out),
                    CallArg::Slice(v) => out.push(*v),
                    CallArg::Other(c) => out.extend(&c.reads),
                }
            }
        }
        Rhs::Expr(c) => out.extend(&c.reads),
    }
}

fn recomputable(
    f: &Func,
    b: &Block,
    loop_body: bool,
    in_fused: bool,
    defs: &[usize],
    facts: &mut Facts,
) {
    // The body of a fused loop runs its reverse right after its forward: nothing to recompute
    // for buffers there.
    let fused_body = in_fused
        && loop_body
        && f.body.stmts.iter().any(|s| {
            matches!(s, Stmt::For { id, body, .. } if std::ptr::eq(body, b) && facts.fused.contains_key(id))
        });
    if loop_body {
        // A variable defined once, at the top, from values the rest of the body keeps. (The
        // last statement writing each variable, found once, answers "written later?" for all.)
        let mut last_write = std::collections::HashMap::new();
        for (i, s) in b.stmts.iter().enumerate() {
            let mut w = BTreeSet::new();
            writes(s, &mut w);
            for v in w {
                last_write.insert(v, i);
            }
        }
        for (i, s) in b.stmts.iter().enumerate() {
            let Some((v, site)) = top_def(s) else {
                continue;
            };
            if defs[v] == 1 && recompute_candidate(f, v, s) {
                let written_later = |r: &VarId| last_write.get(r).is_some_and(|&k| k > i);
                let reads = stmt_reads(s);
                if reads
                    .iter()
                    .all(|r| !written_later(r) && !recompute_blocked(f, *r))
                {
                    facts.recompute[v] = true;
                    facts.recompute_site[v] = Some(site);
                    facts.recompute_reads[v] = reads;
                }
            }
        }
        // An accumulator: `let mut r = ...;` then `for` loops that update `r` from values the
        // rest of the body keeps (a residual, a pre-activation). The reverse iteration re-runs
        // the `let` and the loops instead of storing `r`. Not inside a fused loop: there the
        // tape holds one iteration's values at a time, and one value is cheaper to keep than
        // a loop to re-run.
        let mut inner = vec![0usize; defs.len()];
        let mut touched = Vec::new();
        for (i, s) in b.stmts.iter().enumerate() {
            if in_fused {
                break;
            }
            let Some((v, site)) = top_def(s) else {
                continue;
            };
            if facts.recompute[v] || defs[v] < 2 || !recompute_candidate(f, v, s) {
                continue;
            }
            let mut loops = Vec::new();
            let mut count = 1;
            let mut ok = true;
            for (j, t) in b.stmts.iter().enumerate().skip(i + 1) {
                // Counts of this statement's definitions, in `inner` (all zero between uses:
                // a fresh vector per statement made this quadratic in the body's size).
                def_counts(t, &mut inner, &mut touched);
                if inner[v] == 0 {
                    clear_counts(&mut inner, &mut touched);
                    continue;
                }
                count += inner[v];
                let local = |w: VarId| w == v || inner[w] == defs[w];
                let mut w_all = BTreeSet::new();
                writes(t, &mut w_all);
                ok &= matches!(t, Stmt::For { exit: None, .. })
                    && w_all.iter().all(|&w| local(w))
                    && !has_side_effects(t);
                if ok {
                    let mut reads = Vec::new();
                    deep_reads(t, &mut reads);
                    reads.retain(|&r| !local(r));
                    loops.push((j, reads));
                }
                clear_counts(&mut inner, &mut touched);
                if !ok {
                    break;
                }
            }
            if !ok || count != defs[v] || loops.is_empty() {
                continue;
            }
            let looped: Vec<usize> = loops.iter().map(|(j, _)| *j).collect();
            let mut later = BTreeSet::new();
            for (m, t) in b.stmts.iter().enumerate().skip(i + 1) {
                if !looped.contains(&m) {
                    writes(t, &mut later);
                }
            }
            // Variables recomputed above are recomputed first, in order: they do not count.
            later.retain(|&w| !facts.recompute[w]);
            let mut reads = stmt_reads(s);
            reads.extend(loops.iter().flat_map(|(_, r)| r.iter().copied()));
            reads.sort_unstable();
            reads.dedup();
            if reads
                .iter()
                .all(|r| !later.contains(r) && !recompute_blocked(f, *r))
            {
                facts.recompute[v] = true;
                facts.recompute_site[v] = Some(site);
                facts.recompute_reads[v] = reads;
                for &j in &looped {
                    if let Stmt::For { id, .. } = &b.stmts[j] {
                        facts.recompute_loop[*id] = Some(v);
                    }
                }
            }
        }
        // A buffer filled by a loop of the body (`xc[j] = x[j] - mu[j]`), cheaply, from values
        // the rest of the body keeps, and read only by the statements after it: the reverse
        // iteration fills it again instead of taping the elements each fill overwrites.
        for (i, s) in b.stmts.iter().enumerate() {
            if fused_body {
                break;
            }
            let Some((buf, site, id, index)) = cheap_fill(f, s) else {
                continue;
            };
            let mut reads = Vec::new();
            deep_reads(s, &mut reads);
            reads.retain(|&r| r != index);
            reads.sort_unstable();
            reads.dedup();
            let written_later = |r: &VarId| last_write.get(r).is_some_and(|&k| k > i);
            if reads
                .iter()
                .any(|r| *r == buf || written_later(r) || recompute_blocked(f, *r))
                || !only_fill_and_later_reads(f, facts, b, i, buf, site)
            {
                continue;
            }
            facts.recompute[buf] = true;
            facts.recompute_site[buf] = Some(site);
            facts.recompute_reads[buf] = reads;
            facts.recompute_loop[id] = Some(buf);
        }
    }
    for s in &b.stmts {
        match s {
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                recomputable(f, then_branch, false, in_fused, defs, facts);
                recomputable(f, else_branch, false, in_fused, defs, facts);
            }
            Stmt::For { id, body, .. } => {
                let fused = in_fused || facts.fused.contains_key(id);
                recomputable(f, body, true, fused, defs, facts)
            }
            Stmt::While { body, .. } => recomputable(f, body, true, in_fused, defs, facts),
            _ => {}
        }
    }
}

/// A loop whose body is one cheap store into a local buffer (no call, no transcendental
/// function): the buffer, the store's site, the loop's id and its index.
fn cheap_fill(f: &Func, s: &Stmt) -> Option<(VarId, SiteId, SiteId, VarId)> {
    let Stmt::For {
        id,
        index,
        body,
        exit: None,
        ..
    } = s
    else {
        return None;
    };
    let [Stmt::Assign {
        site,
        place: Place::Elem { buf, .. },
        temps,
        ..
    }] = body.stmts.as_slice()
    else {
        return None;
    };
    let cheap = temps.iter().all(|n| match &n.rhs {
        Rhs::Op { op, .. } => !op.expensive(),
        Rhs::Load { .. } => true,
        Rhs::Call { .. } | Rhs::Expr(_) => false,
    });
    let var = &f.vars[*buf];
    (cheap && var.role == Role::Local && var.sort == Sort::Buffer)
        .then_some((*buf, *site, *id, *index))
}

/// Whether `buf` is stored into only by the fill at site `site` (statement `i` of `b`), declared
/// outside loops, and read only by the statements of `b` after the fill.
fn only_fill_and_later_reads(
    f: &Func,
    facts: &Facts,
    b: &Block,
    i: usize,
    buf: VarId,
    site: SiteId,
) -> bool {
    let mut ok = true;
    let mut reads = 0usize;
    f.body.walk(&mut |t| match t {
        Stmt::Assign {
            site: s,
            place: Place::Elem { buf: w, .. },
            ..
        } if *w == buf && *s != site => ok = false,
        Stmt::BufDecl {
            site: s, buf: w, ..
        } if *w == buf && facts.site_in_loop[*s] => ok = false,
        _ => reads += shallow_reads(t).iter().filter(|&&r| r == buf).count(),
    });
    let mut later = 0usize;
    for t in &b.stmts[i + 1..] {
        t.walk(&mut |t| later += shallow_reads(t).iter().filter(|&&r| r == buf).count());
    }
    ok && reads == later
}

/// The variable and site of a top-level assignment or set.
fn top_def(s: &Stmt) -> Option<(VarId, SiteId)> {
    match s {
        Stmt::Assign {
            site,
            place: Place::Var(v),
            ..
        }
        | Stmt::Set { site, dst: v, .. } => Some((*v, *site)),
        _ => None,
    }
}

/// Variables that may be recomputed: plain locals, not computed by calls (costly to repeat).
fn recompute_candidate(f: &Func, v: VarId, s: &Stmt) -> bool {
    let var = &f.vars[v];
    matches!(var.role, Role::Local | Role::Hidden)
        && matches!(var.sort, Sort::Float | Sort::Int | Sort::Bool)
        && !matches!(s, Stmt::Assign { temps, .. } if temps.iter().any(|n| matches!(n.rhs, Rhs::Call { .. })))
}

/// Adds to `counts` how many times each variable is defined inside `s`, nested statements
/// included, noting each variable counted in `touched` (so that [`clear_counts`] can reset
/// them without clearing the whole vector).
fn def_counts(s: &Stmt, counts: &mut [usize], touched: &mut Vec<VarId>) {
    let mut count = |v: VarId| {
        counts[v] += 1;
        touched.push(v);
    };
    s.walk(&mut |s| match s {
        Stmt::Assign {
            place: Place::Var(v),
            ..
        }
        | Stmt::Set { dst: v, .. } => count(*v),
        Stmt::Assign {
            place: Place::Elem { buf, .. },
            ..
        }
        | Stmt::BufDecl { buf, .. } => count(*buf),
        Stmt::For { index, exit, .. } => {
            count(*index);
            if let Some(e) = exit {
                count(e.trips);
            }
        }
        Stmt::While { trips, .. } => count(*trips),
        _ => {}
    });
}

/// Resets the entries [`def_counts`] set.
fn clear_counts(counts: &mut [usize], touched: &mut Vec<VarId>) {
    for v in touched.drain(..) {
        counts[v] = 0;
    }
}

/// Every variable read anywhere inside `s`.
pub fn deep_reads(s: &Stmt, out: &mut Vec<VarId>) {
    s.walk(&mut |s| out.extend(shallow_reads(s)));
}

/// Variables the statement itself reads (not its nested statements): its computation, a
/// branch's flag, a loop's bounds and step.
pub fn shallow_reads(s: &Stmt) -> Vec<VarId> {
    let mut out = stmt_reads(s);
    match s {
        Stmt::If { flag, .. } => out.push(*flag),
        Stmt::For { range, .. } => {
            out.push(range.start);
            out.push(range.end);
            out.extend(range.adapters.iter().filter_map(|a| match a {
                Adapter::StepBy(v) => Some(*v),
                Adapter::Rev => None,
            }));
        }
        Stmt::Plain(c) => out.extend(&c.reads),
        _ => {}
    }
    out
}

/// Variables the statement itself writes (not its nested statements): its target, a loop's
/// index and recorded trip count.
pub fn shallow_writes(s: &Stmt) -> Vec<VarId> {
    match s {
        Stmt::Assign { place, .. } => vec![target(place)],
        Stmt::Set { dst: v, .. } | Stmt::BufDecl { buf: v, .. } => vec![*v],
        Stmt::For { index, exit, .. } => std::iter::once(*index)
            .chain(exit.iter().map(|e| e.trips))
            .collect(),
        Stmt::While { trips, .. } => vec![*trips],
        Stmt::If { .. } | Stmt::Plain(_) => Vec::new(),
    }
}

/// Adds to `counts`, per variable, how often the statement itself reads or writes it.
pub fn count_touches(s: &Stmt, counts: &mut std::collections::HashMap<VarId, usize>) {
    for v in shallow_reads(s).into_iter().chain(shallow_writes(s)) {
        *counts.entry(v).or_default() += 1;
    }
}

/// Whether re-running `s` would repeat something other than computing values.
fn has_side_effects(s: &Stmt) -> bool {
    let mut found = false;
    s.walk(&mut |s| found |= matches!(s, Stmt::Plain(_) | Stmt::While { .. }));
    found
}

/// Opaque variables have no known type to restore: code reading them is not recomputed.
fn recompute_blocked(f: &Func, v: VarId) -> bool {
    f.vars[v].sort == Sort::Opaque
}

// ----- needed values -----

fn needed_block(f: &Func, facts: &Facts, b: &Block, needed: &mut [bool]) {
    for s in &b.stmts {
        for v in rev_reads(f, facts, s) {
            needed[v] = true;
        }
        if let (Some(_), Stmt::Assign { place, .. }) = (reused_root(facts, s), s) {
            needed[target(place)] = true;
        }
        match s {
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                needed_block(f, facts, then_branch, needed);
                needed_block(f, facts, else_branch, needed);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => {
                needed_block(f, facts, body, needed)
            }
            _ => {}
        }
    }
}

/// The last operation of an assignment inside a loop whose partials read its result (`tanh`,
/// `exp`, `sqrt`, `x / y`, ...): the reverse reads that result back from the assigned variable
/// or element, which then holds it, instead of recomputing it (an MLP's `h[j] = z.tanh()` would
/// otherwise evaluate `tanh` again, and re-run the dot product that makes `z` if the rule did
/// not need `z` anyway). Outside loops the forward sweep's temporaries are in scope and nothing
/// is recomputed.
pub fn reused_root(facts: &Facts, s: &Stmt) -> Option<VarId> {
    let Stmt::Assign {
        site,
        place,
        temps,
        value: Operand::Var(v),
        ..
    } = s
    else {
        return None;
    };
    if !facts.site_in_loop[*site] || !facts.place_active(place) {
        return None;
    }
    // An element read back makes the whole buffer needed, so every later write to it saves the
    // value it overwrites: worth it only where tapes hold one iteration (fused loops), not
    // across a whole loop (`y[i] = x[i].sqrt()` over n elements would tape n values), unless
    // the buffer is needed anyway (an LSTM's gates, overwritten each step and saved): then the
    // element holds the result when the reverse reaches the store, as every later write was
    // undone. (`needed` is from the analysis' previous round: the read-back adds nothing.)
    if let Place::Elem { buf, .. } = place {
        if !facts.site_in_fused[*site] && !facts.needed[*buf] {
            return None;
        }
    }
    let node = temps.iter().find(|n| n.id == *v)?;
    let Rhs::Op { op, args, .. } = &node.rhs else {
        return None;
    };
    let active: Vec<bool> = args.iter().map(|a| facts.operand_active(a)).collect();
    let needs = value_needs(*op, &active);
    needs.last().copied()?.then_some(*v)
}

/// Buffers that loop `index in .. { body }` fills, `b[index] = ...` once and nothing else
/// touching `b`, with the result read back by the reverse (`reused_root`).
fn own_read_backs(facts: &Facts, index: VarId, body: &Block) -> Vec<VarId> {
    let mut out = Vec::new();
    for s in &body.stmts {
        let Stmt::Assign {
            place: Place::Elem { buf, index: i },
            ..
        } = s
        else {
            continue;
        };
        if !crate::fuse::is_index(i, index)
            || reused_root(facts, s).is_none()
            || stmt_reads(s).contains(buf)
        {
            continue;
        }
        let mut touches = 0;
        for t in &body.stmts {
            t.walk(&mut |u| {
                let mut w = BTreeSet::new();
                if let Stmt::Assign { .. } | Stmt::Set { .. } | Stmt::BufDecl { .. } = u {
                    writes(u, &mut w);
                }
                if shallow_reads(u).contains(buf) || w.contains(buf) {
                    touches += 1;
                }
            });
        }
        if touches == 1 && !out.contains(buf) {
            out.push(*buf);
        }
    }
    out
}

/// The variable (or buffer) an assignment writes.
fn target(place: &Place) -> VarId {
    match place {
        Place::Var(v) => *v,
        Place::Elem { buf, .. } => *buf,
    }
}

/// Variables whose values the reverse sweep of `s` itself reads (nested statements excluded).
pub fn rev_reads(f: &Func, facts: &Facts, s: &Stmt) -> Vec<VarId> {
    let mut out = Vec::new();
    match s {
        Stmt::Assign { place, temps, .. } if facts.place_active(place) => {
            if let Place::Elem { index, .. } = place {
                out.extend(&index.reads);
            }
            let root = reused_root(facts, s);
            for node in temps.iter().filter(|n| facts.active[n.id]) {
                match &node.rhs {
                    Rhs::Op { op, args, int_arg } => {
                        let active: Vec<bool> =
                            args.iter().map(|a| facts.operand_active(a)).collect();
                        let needs = value_needs(*op, &active);
                        // A result read back from the target needs no recomputation.
                        let result = needs[args.len()] && Some(node.id) != root;
                        for (a, &need) in args.iter().zip(&needs) {
                            if need || result {
                                operand_reads(temps, a, &mut out);
                            }
                        }
                        if let Some(c) = int_arg {
                            out.extend(&c.reads);
                        }
                    }
                    Rhs::Load { index, .. } => out.extend(&index.reads),
                    rhs @ Rhs::Call { .. } => rhs_reads(temps, rhs, &mut out),
                    Rhs::Expr(_) => {}
                }
            }
        }
        Stmt::If { flag, .. } if facts.relevant(f, s) => out.push(*flag),
        Stmt::For { range, exit, .. } if facts.relevant(f, s) => {
            out.push(range.start);
            out.push(range.end);
            for a in &range.adapters {
                if let Adapter::StepBy(v) = a {
                    out.push(*v);
                }
            }
            if let Some(e) = exit {
                out.push(e.trips);
            }
        }
        Stmt::While { trips, .. } if facts.relevant(f, s) => out.push(*trips),
        _ => {}
    }
    out
}

// ----- to-be-recorded -----

/// The to-be-recorded walk. `pending` holds the variables with a needed read since their last
/// assignment, in program order; an assignment that finds its variable pending saves the value
/// it overwrites (when `mark` is on).
///
/// The problem is a gen/kill one, so the state at a loop's head is the entry state plus the
/// loop body's *gen* set (the variables it leaves pending when entered with nothing pending).
/// Each body's gen set is computed once (`gens`, by loop), so nested loops cost a walk each
/// rather than a fixpoint iteration per enclosing loop.
struct Tbr<'a> {
    f: &'a Func,
    facts: &'a mut Facts,
    gens: std::collections::HashMap<(bool, SiteId), BTreeSet<VarId>>,
    /// Buffers each `for` statement fills (`fuse::killed_by_fill`), by address.
    kills: std::collections::HashMap<usize, Vec<VarId>>,
}

impl Tbr<'_> {
    fn block(&mut self, b: &Block, pending: &mut BTreeSet<VarId>, mark: bool) {
        for (p, s) in b.stmts.iter().enumerate() {
            self.stmt(s, pending, mark);
            if matches!(s, Stmt::For { .. }) {
                let key = s as *const Stmt as usize;
                let facts = &*self.facts;
                let killed = self
                    .kills
                    .entry(key)
                    .or_insert_with(|| {
                        crate::fuse::killed_by_fill(b, p, &|t| reused_root(facts, t).is_some())
                    })
                    .clone();
                for v in killed {
                    pending.remove(&v);
                }
            }
        }
    }

    fn def(
        &mut self,
        site: SiteId,
        v: VarId,
        kills: bool,
        pending: &mut BTreeSet<VarId>,
        mark: bool,
    ) {
        let facts = &mut *self.facts;
        if facts.recompute_site[v] == Some(site) {
            pending.remove(&v);
            return;
        }
        if mark && pending.contains(&v) {
            facts.save[site] = if facts.site_in_loop[site] {
                Save::Tape
            } else {
                Save::Slot
            };
        }
        if kills {
            pending.remove(&v);
        }
    }

    /// What one iteration of a loop body leaves pending when entered with nothing pending.
    fn gen(
        &mut self,
        key: (bool, SiteId),
        cond: Option<&Block>,
        body: &Block,
        index: Option<VarId>,
    ) -> BTreeSet<VarId> {
        if let Some(g) = self.gens.get(&key) {
            return g.clone();
        }
        let mut p = BTreeSet::new();
        if let Some(c) = cond {
            self.block(c, &mut p, false);
        }
        self.block(body, &mut p, false);
        if let Some(i) = index {
            p.remove(&i);
        }
        self.gens.insert(key, p.clone());
        p
    }

    fn stmt(&mut self, s: &Stmt, pending: &mut BTreeSet<VarId>, mark: bool) {
        let f = self.f;
        match s {
            Stmt::Assign { site, place, .. } => {
                let facts = &*self.facts;
                pending.extend(
                    rev_reads(f, facts, s)
                        .into_iter()
                        .filter(|v| facts.needed[*v]),
                );
                let v = target(place);
                if facts.recompute_site[v] == Some(*site) && facts.needed[v] {
                    pending.extend(facts.recompute_reads[v].iter().copied());
                }
                match place {
                    Place::Var(v) => self.def(*site, *v, true, pending, mark),
                    Place::Elem { buf, .. } => self.def(*site, *buf, false, pending, mark),
                }
                // The reverse reads the value this statement wrote.
                if reused_root(self.facts, s).is_some() {
                    pending.insert(target(place));
                }
            }
            Stmt::Set { site, dst, .. } => {
                let facts = &*self.facts;
                if facts.recompute_site[*dst] == Some(*site) && facts.needed[*dst] {
                    pending.extend(facts.recompute_reads[*dst].iter().copied());
                }
                self.def(*site, *dst, true, pending, mark);
            }
            Stmt::BufDecl { site, buf, .. } => self.def(*site, *buf, true, pending, mark),
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                let mut other = pending.clone();
                self.block(then_branch, pending, mark);
                self.block(else_branch, &mut other, mark);
                pending.extend(other);
                pending.extend(rev_reads(f, self.facts, s));
            }
            Stmt::For { id, body, .. } if self.facts.fused.contains_key(id) => {
                // Each iteration's reverse runs before the next iteration: the body is
                // straight-line code, and the loop leaves nothing pending. What it overwrites
                // must not be pending from before (the reverse of earlier statements would see
                // the loop's last values).
                let mut p = BTreeSet::new();
                self.block(body, &mut p, mark);
                let mut w = BTreeSet::new();
                writes(s, &mut w);
                if w.iter().any(|v| pending.contains(v)) {
                    self.facts.violations.insert(*id);
                }
            }
            Stmt::For {
                id,
                index,
                body,
                exit,
                ..
            } => {
                let gen = self.gen((false, *id), None, body, Some(*index));
                // A fill whose reverse reads its results back (`h[j] = z.tanh()`): iteration j
                // needs `h[j]`, which later iterations do not write (`j` changes every
                // iteration), so what the loop makes pending for its own sake does not make
                // its later iterations save; after the loop the whole buffer is pending.
                let own = own_read_backs(self.facts, *index, body);
                // The head of the loop: entered from before, or from the end of any iteration.
                pending.extend(gen.into_iter().filter(|v| !own.contains(v)));
                if mark {
                    let mut p = pending.clone();
                    p.remove(index);
                    self.block(body, &mut p, true);
                }
                if let Some(e) = exit {
                    self.def(e.site, e.trips, true, pending, mark);
                }
                pending.extend(own);
                pending.extend(rev_reads(f, self.facts, s));
            }
            Stmt::While {
                cond,
                body,
                trips,
                site,
                ..
            } => {
                let gen = self.gen((true, *site), Some(cond), body, None);
                pending.extend(gen);
                if mark {
                    let mut p = pending.clone();
                    self.block(cond, &mut p, true);
                    self.block(body, &mut p, true);
                }
                // The loop is left after evaluating its condition once more.
                self.block(cond, pending, mark);
                self.def(*site, *trips, true, pending, mark);
                pending.extend(rev_reads(f, self.facts, s));
            }
            Stmt::Plain(_) => {}
        }
    }
}

// ----- refusals that need activity -----

/// Code kept as written (a `match`, a method with no rule reached through a field, ...) has no
/// derivative. If it computes a float from an active value, the gradient would silently miss
/// that dependency: refuse it, naming the value.
pub fn check_inactive_code(f: &Func, facts: &Facts, cx: &mut crate::errors::Errors) {
    // Variables set by such code from active values ("tainted"), transitively.
    let mut tainted = vec![false; f.vars.len()];
    let hot = |v: VarId, tainted: &[bool]| facts.active[v] || tainted[v];
    loop {
        let mut changed = false;
        f.body.walk(&mut |s| {
            if let Stmt::Set { dst, code, .. } = s {
                if matches!(f.vars[*dst].sort, Sort::Opaque | Sort::Float)
                    && !tainted[*dst]
                    && code
                        .reads
                        .iter()
                        .any(|&r| !code.shape_only.contains(&r) && hot(r, &tainted))
                {
                    tainted[*dst] = true;
                    changed = true;
                }
            }
        });
        if !changed {
            break;
        }
    }
    // Where an opaque variable's value is used as a float.
    let mut used_as_float = vec![false; f.vars.len()];
    f.body.walk(&mut |s| {
        if let Stmt::Assign { temps, .. } = s {
            for n in temps {
                if let Rhs::Expr(code) = &n.rhs {
                    code.reads.iter().for_each(|&r| used_as_float[r] = true);
                }
            }
        }
    });
    let mut report = |code: &Code, span: proc_macro2::Span, only_active: bool| {
        let culprit = code
            .reads
            .iter()
            .filter(|r| !code.shape_only.contains(r))
            .find(|&&r| facts.active[r] || (!only_active && tainted[r]));
        if let Some(&v) = culprit {
            cx.error(
                span,
                format!(
                    "this expression computes a float from the active value `{}`, but #[gradient] \
                     cannot differentiate it; write it with arithmetic, float methods, `if`/`else`, \
                     indexing and calls to #[gradient] functions",
                    f.vars[v].name
                ),
            );
        }
    };
    f.body.walk(&mut |s| match s {
        Stmt::Assign { temps, .. } => {
            for n in temps {
                if let Rhs::Expr(code) = &n.rhs {
                    // Tainted variables are reported where they are set.
                    report(code, n.span, true);
                }
            }
        }
        Stmt::Set { dst, code, .. }
            if tainted[*dst] && (used_as_float[*dst] || f.vars[*dst].sort == Sort::Float) =>
        {
            report(code, code.span, false)
        }
        _ => {}
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Errors;
    use syn::parse_quote;

    fn facts_of(item: syn::ItemFn) -> (Func, Facts) {
        let mut cx = Errors::default();
        let f = crate::lower::lower(&item, &Default::default(), &mut cx).expect("lowers");
        assert!(!cx.has_errors());
        let facts = analyse(&f);
        (f, facts)
    }

    fn var(f: &Func, name: &str) -> VarId {
        f.vars
            .iter()
            .position(|v| v.name == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    }

    fn saves(facts: &Facts) -> Vec<Save> {
        facts
            .save
            .iter()
            .copied()
            .filter(|s| *s != Save::No)
            .collect()
    }

    #[test]
    fn rosenbrock_recomputes_and_saves_nothing() {
        // for i in 0..n-1 { let a = x[i+1] - x[i]^2; let b = 1 - x[i]; s += 100a² + b² }
        let (f, facts) = facts_of(parse_quote! {
            fn rosen(x: &[f64]) -> f64 {
                let mut s = 0.0;
                for i in 0..x.len() - 1 {
                    let a = x[i + 1] - x[i] * x[i];
                    let b = 1.0 - x[i];
                    s += 100.0 * a * a + b * b;
                }
                s
            }
        });
        assert!(facts.recompute[var(&f, "a")] && facts.recompute[var(&f, "b")]);
        assert!(!facts.needed[var(&f, "s")], "s enters only linearly");
        assert!(saves(&facts).is_empty());
    }

    #[test]
    fn recurrence_saves_once_per_step() {
        let (f, facts) = facts_of(parse_quote! {
            fn logistic(x0: f64, r: f64, steps: usize) -> f64 {
                let mut x = x0;
                for _ in 0..steps {
                    x = r * x * (1.0 - x);
                }
                x
            }
        });
        assert!(facts.needed[var(&f, "x")]);
        // The first definition runs once and overwrites nothing anyone reads.
        assert_eq!(saves(&facts), [Save::Tape]);
    }

    #[test]
    fn straight_line_reassignment_uses_a_slot() {
        let (_, facts) = facts_of(parse_quote! {
            fn g(x: f64) -> f64 {
                let mut y = x * x;
                y = y.sin();
                y = y * x;
                y
            }
        });
        // `y = y.sin()` overwrites the y that `sin` reads; `y = y * x` the y that `*` reads.
        assert_eq!(saves(&facts), [Save::Slot, Save::Slot]);
    }

    #[test]
    fn linear_accumulation_saves_nothing_and_inactive_is_inactive() {
        let (f, facts) = facts_of(parse_quote! {
            fn g(x: f64, n: usize) -> f64 {
                let c = n as f64;
                let mut s = 0.0;
                for _ in 0..n {
                    s += 2.0 * x + c;
                }
                s
            }
        });
        assert!(!facts.active[var(&f, "c")]);
        assert!(facts.active[var(&f, "s")]);
        assert!(saves(&facts).is_empty());
    }

    #[test]
    fn branch_decisions_in_loops_are_taped() {
        let (f, facts) = facts_of(parse_quote! {
            fn g(x: f64, n: usize) -> f64 {
                let mut y = x;
                for _ in 0..n {
                    if y > 1.0 {
                        y = y * 0.5;
                    } else {
                        y = y + 1.0;
                    }
                }
                y
            }
        });
        let cond = f.vars.iter().position(|v| v.name == "cond").expect("flag");
        assert!(facts.needed[cond]);
        // One bit per iteration for the decision; `y * 0.5` and `y + 1.0` do not read y in
        // the reverse sweep (constant partials), so y itself is not saved.
        assert_eq!(saves(&facts), [Save::Tape]);
    }
}
