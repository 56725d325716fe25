//! The reverse sweep: for each active statement, in reverse order, its adjoint accumulation.
//!
//! An assignment's reverse takes the adjoint of its target (and zeroes it: the old value did not
//! flow into the new one except through the operands), restores the overwritten value if the
//! analysis said to save it, recomputes the temporaries the rules need from the restored state,
//! and walks its Wengert list backwards, calling `::ad::__private::rules::<op>` for the partial
//! derivatives. Regions replay: a branch by its recorded flag, a `for` loop backwards over the
//! same range (only the iterations that ran), a `while` loop for its recorded trip count.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::analyse::{defined_var, Save};
use crate::emit::{fixed, Emitter, Leaf};
use crate::intrinsics::Kind;
use crate::ir::*;

/// A zero-filled adjoint buffer from the thread's tape cache (`ad_runtime::Buffer`).
struct Filled;
const FILLED: Filled = Filled;

impl quote::ToTokens for Filled {
    fn to_tokens(&self, out: &mut TokenStream) {
        out.extend(quote!(::ad::__private::Buffer::filled));
    }
}

/// A loop being reversed (not fused): adjoints of loads whose element does not change during
/// the loop (`xcentered[j]` in a loop over `r`) are summed in a register and added to memory once
/// after it. In memory, each iteration would load what the previous one stored: a chain of
/// store-forwarding latencies the compiler cannot remove, as it cannot prove that two buffers'
/// adjoints do not overlap.
pub struct Hoist {
    /// Variables and buffers the loop writes.
    pub written: std::collections::BTreeSet<VarId>,
    /// (index text, buffer, index tokens, register).
    pub used: Vec<(String, VarId, TokenStream, Ident)>,
}

/// The adjoint of a temporary, or a contribution to an adjoint. A unit or a (negated) name is
/// written where it is used (the unit seed of a statement's partials mostly meets sums and
/// products, whose partials are units or names): fewer tokens, and nothing to bind.
#[derive(Clone)]
pub enum Adj {
    /// `1.0`, or `-1.0` when negated.
    One(bool),
    /// A name, negated or not.
    Name(bool, Ident),
    /// Anything else; bound to a name before it is used.
    Expr(TokenStream),
}

impl Adj {
    fn neg(self) -> Adj {
        match self {
            Adj::One(n) => Adj::One(!n),
            Adj::Name(n, i) => Adj::Name(!n, i),
            Adj::Expr(e) => Adj::Expr(quote!(-(#e))),
        }
    }

    /// `g · self`.
    fn scaled(&self, g: &Ident) -> TokenStream {
        match self {
            Adj::One(false) => quote!(#g),
            Adj::One(true) => quote!(-#g),
            _ => quote!(#g * #self),
        }
    }

    /// A name or a literal: needs no parentheses as an operand.
    fn is_atom(&self) -> bool {
        match self {
            Adj::One(n) | Adj::Name(n, _) => !n,
            Adj::Expr(e) => {
                let mut trees = e.clone().into_iter();
                matches!(
                    (trees.next(), trees.next()),
                    (
                        Some(proc_macro2::TokenTree::Ident(_) | proc_macro2::TokenTree::Literal(_)),
                        None
                    )
                )
            }
        }
    }

    /// `self · x`, for `x` a name or an expression.
    fn times(&self, x: TokenStream, x_is_name: Option<&Ident>) -> Adj {
        match (self, x_is_name) {
            (Adj::One(n), Some(i)) => Adj::Name(*n, i.clone()),
            (Adj::One(false), None) => Adj::Expr(x),
            _ => Adj::Expr(quote!(#self * #x)),
        }
    }
}

impl quote::ToTokens for Adj {
    fn to_tokens(&self, out: &mut TokenStream) {
        let minus = |n: bool| if n { quote!(-) } else { quote!() };
        match self {
            Adj::One(n) => {
                let m = minus(*n);
                out.extend(quote!(#m 1.0));
            }
            Adj::Name(n, i) => {
                let m = minus(*n);
                out.extend(quote!(#m #i));
            }
            Adj::Expr(e) => e.to_tokens(out),
        }
    }
}

impl Emitter<'_> {
    /// The register for the adjoint of `buf[index]`, if some enclosing reversed loop leaves the
    /// buffer and every variable of the index unchanged (the outermost such loop).
    fn hoisted_load(&self, buf: VarId, index: &Code) -> Option<Ident> {
        let mut frames = self.hoist.borrow_mut();
        let invariant = |h: &Hoist| {
            !h.written.contains(&buf) && index.reads.iter().all(|r| !h.written.contains(r))
        };
        let frame = frames.iter_mut().find(|h| invariant(h))?;
        let key = index.tokens.to_string();
        if let Some((_, _, _, h)) = frame
            .used
            .iter()
            .find(|(k, b, _, _)| *b == buf && *k == key)
        {
            return Some(h.clone());
        }
        let h = format_ident!(
            "__h{}x{}",
            buf,
            self.hoist_count.get(),
            span = Span::mixed_site()
        );
        self.hoist_count.set(self.hoist_count.get() + 1);
        frame.used.push((key, buf, index.tokens.clone(), h.clone()));
        Some(h)
    }

    /// Adjoint variables, declared (zero) between the sweeps.
    pub fn adjoint_decls(&self) -> TokenStream {
        let mut out = Vec::new();
        let mut floats = Vec::new();
        for (v, var) in self.f.vars.iter().enumerate() {
            if !self.facts.active[v] || var.role == Role::Temp || self.early[v] {
                continue;
            }
            if var.sort == Sort::Float {
                floats.push(self.bar(v));
            } else {
                out.push(self.adjoint_decl(v));
            }
        }
        out.push(self.zeros(floats));
        quote!(#(#out)*)
    }

    /// The declaration of one adjoint variable (zero; nothing for a slice parameter, whose
    /// shadow is a parameter).
    pub fn adjoint_decl(&self, v: VarId) -> TokenStream {
        let t = &self.t;
        let var = &self.f.vars[v];
        let bar = self.bar(v);
        match var.sort {
            Sort::Float => quote!(let mut #bar: #t = 0.0;),
            Sort::Buffer => {
                let id = self.ident(v);
                match &var.array_len {
                    Some(len) => quote!(let mut #bar = [0.0 as #t; #len];),
                    // From the thread's tape cache (see `ad_runtime::Buffer`).
                    None => quote!(let mut #bar = #FILLED(0.0 as #t, #id.len());),
                }
            }
            _ => quote!(),
        }
    }

    /// The reverse of a block; a loop body first recomputes the variables the analysis chose to
    /// recompute rather than store.
    pub fn rev_block(&mut self, b: &Block, loop_body: bool) -> TokenStream {
        if self.depth > 0 {
            // A branch or a loop body: what the other branch, or the code before, left zero
            // says nothing here, except what the loop knows of every iteration.
            let known = if loop_body {
                std::mem::take(&mut *self.loop_zero.borrow_mut())
            } else {
                Default::default()
            };
            *self.zero.borrow_mut() = known;
        }
        let mut out = Vec::new();
        if loop_body {
            let record = std::mem::replace(&mut self.record, false);
            for s in &b.stmts {
                let recomputed = match s {
                    Stmt::Assign { site, .. } | Stmt::Set { site, .. } => defined_var(s)
                        .is_some_and(|v| {
                            self.facts.recompute_site[v] == Some(*site) && self.facts.needed[v]
                        }),
                    Stmt::For { id, .. } => {
                        self.facts.recompute_loop[*id].is_some_and(|v| self.facts.needed[v])
                    }
                    _ => false,
                };
                if recomputed {
                    out.push(self.fwd_stmt(s));
                }
            }
            self.record = record;
        }
        // Loops whose reverse runs in a later loop's, jammed (`jam.rs`).
        let mut jammed = Vec::new();
        for s in b.stmts.iter().rev() {
            if let Stmt::For { id, .. } = s {
                if jammed.contains(id) {
                    continue;
                }
                if let Some(jam) = self.jam_of(*id) {
                    jammed.extend(jam.members.iter().copied());
                    out.push(self.rev_stmt(&jam.stmt));
                    continue;
                }
            }
            if self.facts.relevant(self.f, s) {
                out.push(self.rev_stmt(s));
            }
        }
        // Moved, not copied as `quote!` would (expansion time grows with tokens copied).
        TokenStream::from_iter(out)
    }

    /// The jam whose reverse runs in place of loop `id`'s (`jam.rs`), unless one of its loops
    /// is reversed another way here (merged with its forward, or captured for that) or more
    /// than one keeps results on `__temps`, whose pops must stay in order.
    fn jam_of(&self, id: SiteId) -> Option<std::rc::Rc<crate::jam::Jam>> {
        let jam = self.jams.get(&id)?;
        let Stmt::For { body, .. } = &jam.stmt else {
            return None;
        };
        let mut rest = body.stmts.as_slice();
        let mut pushing = 0;
        for &k in &jam.parts {
            let (part, after) = rest.split_at(k.min(rest.len()));
            let mut pushes = false;
            for s in part {
                s.walk(&mut |t| pushes = pushes || self.pushes_temps(t));
            }
            pushing += usize::from(pushes);
            rest = after;
        }
        // (A moved statement's pushes would lie between the loops' on the tape.)
        let moved_push = jam.moved.iter().any(|s| self.pushes_temps(s));
        let merged = jam.members.iter().any(|m| self.merged.contains(m));
        (!self.capturing && !merged && pushing <= 1 && !moved_push).then(|| jam.clone())
    }

    pub(crate) fn rev_stmt(&mut self, s: &Stmt) -> TokenStream {
        if !matches!(
            s,
            Stmt::Assign { .. } | Stmt::Set { .. } | Stmt::BufDecl { .. }
        ) {
            // A region may run any number of times: nothing is known inside or after it.
            self.zero.borrow_mut().clear();
            let out = self.rev_region(s);
            self.zero.borrow_mut().clear();
            return out;
        }
        self.rev_region(s)
    }

    fn rev_region(&mut self, s: &Stmt) -> TokenStream {
        let t = self.t.clone();
        match s {
            Stmt::Assign {
                site,
                place,
                temps,
                value,
                ..
            } => {
                let g = fixed("__g");
                // The element's index: the index itself if it is one variable, else bound once.
                let k_ident = fixed("__i");
                let mut k = quote!(#k_ident);
                let active = self.facts.place_active(place);
                let (head, restore) = match place {
                    Place::Var(v) => {
                        let id = self.ident(*v);
                        let bar = self.bar(*v);
                        // An increment `s = s + e` passes `s`'s adjoint through unchanged: it is
                        // neither zeroed nor added back.
                        let increment = active && var_increment(temps, value, *v);
                        self.increment_var.set(increment.then_some(*v));
                        let head = if !active {
                            quote!()
                        } else if increment {
                            quote!(let #g = #bar;)
                        } else {
                            self.zero.borrow_mut().insert(*v);
                            quote!(let #g = #bar; #bar = 0.0;)
                        };
                        (head, self.restore(*site, *v, quote!(#id)))
                    }
                    Place::Elem { buf, index } => {
                        let b = self.ident(*buf);
                        let bar = self.bar(*buf);
                        let i = &index.tokens;
                        let bind = if crate::emit::one_ident(i) {
                            k = i.clone();
                            quote!()
                        } else {
                            quote!(let #k: usize = #i;)
                        };
                        // An increment passes the element's adjoint through unchanged: it is
                        // neither zeroed nor added back.
                        self.increment = increment_load(temps, value, *buf, index)
                            .filter(|l| active && self.facts.active[*l]);
                        let head = if !active {
                            bind
                        } else if self.increment.is_some() {
                            quote!(#bind let #g = #bar[#k];)
                        } else {
                            quote!(#bind let #g = #bar[#k]; #bar[#k] = 0.0;)
                        };
                        (head, self.restore(*site, *buf, quote!(#b[#k])))
                    }
                };
                if !active {
                    return quote!({ #head #restore });
                }
                // Its part for a merged loop's sum ran before that loop (`Emitter::seed`).
                *self.skip_now.borrow_mut() = match self.leaf_only.get() {
                    None => self.leaf_skip.get(site).cloned().unwrap_or_default(),
                    Some(_) => Vec::new(),
                };
                // The result of the last operation, read back before the restore.
                let root = crate::analyse::reused_root(self.facts, s);
                let y = fixed("__y");
                let read_back = match (root, place) {
                    (None, _) => quote!(),
                    (Some(_), Place::Var(v)) => {
                        let id = self.ident(*v);
                        quote!(let #y: #t = #id;)
                    }
                    (Some(_), Place::Elem { buf, .. }) => {
                        let b = self.ident(*buf);
                        quote!(let #y: #t = #b[#k];)
                    }
                };
                self.root = root;
                // Temporaries: reused from the forward sweep at the top level, else recomputed
                // (only those some rule reads).
                let recompute = if self.depth == 0 {
                    quote!()
                } else {
                    let mut need = self.needed_temps(temps, root);
                    // Results the forward sweep kept (`saved_temps`), in reverse order.
                    let saved = self.saved_temps(s);
                    let tape = fixed("__temps");
                    let pops: Vec<_> = temps
                        .iter()
                        .zip(&saved)
                        .rev()
                        .filter(|(_, s)| **s)
                        .map(|(n, _)| {
                            if matches!(n.rhs, Rhs::Call { .. }) {
                                // Its partials, pushed in order.
                                self.popped_calls.borrow_mut().insert(n.id);
                                let ds = Self::call_partials(n).into_iter().rev();
                                return quote!(#(let #ds: #t = #tape.pop();)*);
                            }
                            if self.kept_partials(*site, n) {
                                self.popped_calls.borrow_mut().insert(n.id);
                                let (ds, _) = self.partials_call(n);
                                let kept = Self::kept_names(n, ds.len());
                                return quote!(#(let #ds: #t = #kept;)*);
                            }
                            let id = self.ident(n.id);
                            quote!(let #id: #t = #tape.pop();)
                        })
                        .collect();
                    for ((n, s), node) in need.iter_mut().zip(&saved).zip(temps) {
                        // (Kept partials leave the value to recompute, if a rule reads it.)
                        *n &= !*s || self.kept_partials(*site, node);
                    }
                    let rest = self.temps(temps, Some(&need));
                    quote!(#(#pops)* #rest)
                };
                // Preaccumulation: the statement's partial derivatives are computed from a unit
                // seed, apart from `__g`, and each variable it reads gets `__g` times the sum of
                // its partials at the end. The adjoint of the target then passes through one
                // multiplication per statement, not one per operation (the logistic map's
                // `x ← r x (1 − x)` chains one product per step instead of two and an add).
                let mut body = Vec::new();
                *self.leaves.borrow_mut() = Some(Vec::new());
                self.temp_adj.borrow_mut().clear();
                body.push(self.accumulate(temps, value, Adj::One(false)));
                let mut reached = self.reached_temps(temps, value);
                if let Some(v) = self.leaf_only.get() {
                    // A seed needs only the nodes on the way to `v`.
                    for (r, l) in reached.iter_mut().zip(leads_to(temps, v)) {
                        *r &= l;
                    }
                }
                for (node, _) in temps.iter().zip(&reached).rev().filter(|(_, r)| **r) {
                    body.push(self.node_adjoint(temps, node));
                }
                let leaves = self.leaves.borrow_mut().take().unwrap_or_default();
                let mut order: Vec<Leaf> = Vec::new();
                let mut sums: std::collections::HashMap<Leaf, Vec<Adj>> = Default::default();
                for (v, c) in leaves {
                    if !sums.contains_key(&v) {
                        order.push(v);
                    }
                    sums.entry(v).or_default().push(c);
                }
                for leaf in order {
                    let terms = &sums[&leaf];
                    let scaled = match terms.as_slice() {
                        [c @ Adj::One(_)] => c.scaled(&g),
                        [c] if c.is_atom() => quote!(#g * #c),
                        [c] => quote!(#g * (#c)),
                        _ => {
                            let terms = terms.iter().map(|c| {
                                if c.is_atom() {
                                    quote!(#c)
                                } else {
                                    quote!((#c))
                                }
                            });
                            quote!(#g * (#(#terms)+*))
                        }
                    };
                    let (target, first) = match leaf {
                        Leaf::Var(v) => (self.bar(v), self.zero.borrow_mut().remove(&v)),
                        Leaf::Acc(b, k) => {
                            let fresh = self.shift.as_ref().is_some_and(|c| {
                                let mut sh = c.borrow_mut();
                                sh.assigned.insert((b, k)) && self.depth == sh.depth
                            });
                            (self.shift_acc(b, k), fresh)
                        }
                    };
                    body.push(if first {
                        quote!(#target = #scaled;)
                    } else {
                        quote!(#target += #scaled;)
                    });
                }
                self.root = None;
                self.increment = None;
                self.increment_var.set(None);
                for v in self.skip_now.take() {
                    // Its adjoint holds the seed and the loop's part: not known to be zero.
                    self.zero.borrow_mut().remove(&v);
                }
                // (Per statement: a node whose adjoint was not reached leaves its mark here.)
                self.popped_calls.borrow_mut().clear();
                // Moved into the braces, not copied as `quote!` would.
                let inner = [head, read_back, restore, recompute]
                    .into_iter()
                    .chain(body)
                    .collect();
                proc_macro2::TokenTree::Group(proc_macro2::Group::new(
                    proc_macro2::Delimiter::Brace,
                    inner,
                ))
                .into()
            }
            Stmt::Set { site, dst, .. } => {
                let id = self.ident(*dst);
                let zero = if self.facts.active[*dst] {
                    let bar = self.bar(*dst);
                    quote!(#bar = 0.0;)
                } else {
                    quote!()
                };
                let restore = self.restore(*site, *dst, quote!(#id));
                quote!(#zero #restore)
            }
            Stmt::BufDecl { site, buf, .. } => {
                let b = self.ident(*buf);
                let zero = if self.facts.active[*buf] {
                    let bar = self.bar(*buf);
                    quote!(#bar.fill(0.0);)
                } else {
                    quote!()
                };
                let restore = if self.facts.save[*site] != Save::No {
                    let tape = self.decl_tape(*buf);
                    quote!(#b = #tape.pop();)
                } else {
                    quote!()
                };
                quote!(#zero #restore)
            }
            Stmt::If {
                flag,
                then_branch,
                else_branch,
            } => {
                let c = self.ident(*flag);
                self.depth += 1;
                let tb = self.rev_block(then_branch, false);
                let eb = self.rev_block(else_branch, false);
                self.depth -= 1;
                if eb.is_empty() {
                    quote!(if #c { #tb })
                } else {
                    quote!(if #c { #tb } else { #eb })
                }
            }
            // Its reverse ran inside its forward loop (`Emitter::merged_loops`).
            Stmt::For { id, .. } if self.merged.contains(id) && !self.capturing => quote!(),
            // Its reverse ran inside the forward sweep (scaled here if its seed was deferred).
            Stmt::For { id, .. } if self.facts.fused.contains_key(id) => {
                self.deferred_rev.remove(id).unwrap_or_default()
            }
            Stmt::For {
                index,
                range,
                body,
                exit,
                ..
            } => {
                let i = self.ident(*index);
                let iter = self.range_iter(range);
                let ascending = self.runs_forward(s);
                let mut written = std::collections::BTreeSet::new();
                crate::analyse::writes(s, &mut written);
                // Loads `x[i ± k]` of memory the loop does not write: registers carried from one
                // reverse iteration to the next (`emit::Shift`), as in fused loops.
                let outer_shift = self.shift.take();
                let carried = range.adapters.is_empty() && exit.is_none();
                if carried {
                    let read_only = (0..self.f.vars.len())
                        .filter(|v| {
                            matches!(self.f.vars[*v].sort, Sort::Slice | Sort::Buffer)
                                && self.facts.active[*v]
                                && !written.contains(v)
                        })
                        .collect();
                    self.shift = Some(std::cell::RefCell::new(crate::emit::Shift {
                        index: *index,
                        read_only,
                        used: Default::default(),
                        assigned: Default::default(),
                        depth: self.depth + 1,
                    }));
                }
                self.hoist.borrow_mut().push(Hoist {
                    written,
                    used: Vec::new(),
                });
                let slots = self.slot_tapes(s);
                *self.loop_zero.borrow_mut() = self.confined_zero(s);
                self.depth += 1;
                let b = self.rev_block(body, true);
                self.depth -= 1;
                // Values saved at the end of the forward iteration, loaded first (before the
                // recomputations, which may read them). Each variable has at most one end save
                // per iteration, so the order of the loads does not matter.
                let loads = self.end_saves(body, |e, site, v| e.end_load(site, v));
                let b = quote!(#loads #b);
                let shift = std::mem::replace(&mut self.shift, outer_shift)
                    .map(|c| c.into_inner())
                    .unwrap_or_default();
                // (Their registers write shadows too: not the stores of an enclosing fused
                // loop's own registers.)
                self.direct.borrow_mut().extend(shift.used.keys());
                // The edge is the last iteration's side: the start when descending.
                let edge = self.ident(if ascending { range.end } else { range.start });
                let [carries, accs, stores, flush_carries] =
                    self.carry_code(&shift, &i, &edge, !ascending, &Default::default());
                let b = quote!(#(#accs)* #b #(#stores)*);
                let stepped = range
                    .adapters
                    .iter()
                    .any(|a| matches!(a, Adapter::StepBy(_)));
                let (wins, b) = if exit.is_none() && !stepped {
                    self.windows(body, *index, range, b, true)
                } else {
                    (quote!(), b)
                };
                let frame = self.hoist.borrow_mut().pop().expect("pushed above");
                let t = &self.t;
                let (mut decls, mut flush) = (Vec::new(), Vec::new());
                for (_, buf, index, h) in &frame.used {
                    let bar = self.bar(*buf);
                    decls.push(quote!(let mut #h: #t = 0.0;));
                    // Zero when the loop did not run, and then the index may not be valid.
                    flush.push(quote!(if #h != 0.0 { #bar[#index] += #h; }));
                }
                if self.capturing {
                    if ascending && exit.is_none() {
                        let check = self.ascending_precheck(s);
                        self.captured = Some([
                            quote!(#(#decls)* #(#carries)* #check #wins),
                            b,
                            quote!(#(#flush_carries)* #(#flush)*),
                        ]);
                    }
                    return quote!();
                }
                let lp = match exit {
                    None if ascending => {
                        let check = self.ascending_precheck(s);
                        quote!(#check #wins for #i in #iter { #b })
                    }
                    None if slots.is_empty() => quote!(#wins for #i in #iter.rev() { #b }),
                    None => {
                        let n =
                            |k: &usize| quote!(#k * ::core::iter::Iterator::size_hint(&#iter).0);
                        let open = slots.iter().map(|(v, k)| {
                            let (tape, n) = (self.tape(*v), n(k));
                            quote!(let #tape = #tape.top(#n);)
                        });
                        let close = slots.iter().map(|(v, k)| {
                            let (tape, n) = (self.tape(*v), n(k));
                            quote!(#tape.drop_top(#n);)
                        });
                        quote!({ #(#open)* #wins for #i in #iter.rev() { #b } } #(#close)*)
                    }
                    Some(e) => {
                        let trips = self.ident(e.trips);
                        let restore = self.restore(e.site, e.trips, quote!(#trips));
                        quote! {
                            for #i in #iter.take(#trips).rev() { #b }
                            #restore
                        }
                    }
                };
                quote!(#(#decls)* #(#carries)* #lp #(#flush_carries)* #(#flush)*)
            }
            Stmt::While {
                body, trips, site, ..
            } => {
                let tr = self.ident(*trips);
                self.depth += 1;
                let b = self.rev_block(body, true);
                self.depth -= 1;
                let restore = self.restore(*site, *trips, quote!(#tr));
                quote! {
                    for _ in 0..#tr { #b }
                    #restore
                }
            }
            Stmt::Plain(_) => quote!(),
        }
    }

    /// Whether the reverse of replayed loop `s` runs its iterations in ascending order: its
    /// iterations commute ([`crate::fuse::reverse_commutes`]), and none of them restores a
    /// value (from a tape, slots or a local) or pops `__temps`, whose order is the reverse of
    /// the forward sweep's.
    ///
    /// Ascending is not always faster, so two more conditions, from measurements:
    ///
    /// - every element of active memory the loop reads or writes is at `i ± k`, for `i` its
    ///   index (those adjoints are summed in registers and stored once per iteration,
    ///   [`crate::emit::Shift`]), or is loaded by the body's own statements, whose last
    ///   element is then checked once before the loop ([`Emitter::ascending_precheck`]). An
    ///   adjoint stored at another index (`w1_bar[j * n + i]`) is bounds-checked on every
    ///   iteration otherwise; descending, the first iteration checks the largest index and
    ///   LLVM drops the others, ascending it cannot (the MLP's inner loop of 10 was 9 % slower
    ///   ascending without the check before it, as fast with it);
    /// - that memory is slice parameters only. The adjoint of a local buffer is read back by
    ///   the reverse of the statements before the loop, which run descending too (GMM's
    ///   `‖Q(x − μ)‖²` loop ascending made the objective at (10, 25) 6–10 % slower); a
    ///   parameter's shadow is only added to.
    pub(crate) fn runs_forward(&self, s: &Stmt) -> bool {
        let Stmt::For { index, body, .. } = s else {
            return false;
        };
        if !crate::fuse::reverse_commutes(self.f, &self.facts.active, s) {
            return false;
        }
        // Loads of the body's own statements at other indices are checked once, before the
        // loop (`ascending_precheck`); those of nested loops are not.
        let top: Vec<*const Stmt> = body.stmts.iter().map(|t| t as *const Stmt).collect();
        let checkable = self.checkable_before();
        let mut ok = true;
        s.walk(&mut |t| {
            if let Some((site, _)) = crate::emit::saving_site(t) {
                ok &= self.facts.save[site] == Save::No;
            }
            if let Stmt::Assign { place, temps, .. } = t {
                ok &= !self.pushes_temps(t);
                let at_top = top.contains(&(t as *const Stmt));
                let fits = |buf: &VarId, at: &Code| {
                    !self.facts.active[*buf]
                        || self.f.vars[*buf].sort == Sort::Slice
                            && (at_top && checkable(at) || self.offset(at, *index).is_some())
                };
                if let Place::Elem { buf, index: at } = place {
                    ok &= fits(buf, at);
                }
                for n in temps {
                    if let Rhs::Load { buf, index: at } = &n.rhs {
                        ok &= fits(buf, at);
                    }
                }
            }
        });
        ok
    }

    /// Whether index code can be evaluated before a loop for its last iteration, with the
    /// values the forward loop saw: it reads only loop indices (this loop's, replaced by its
    /// last value, and those of the loops around it, which the reverse sweep replays),
    /// parameters and variables defined once at the function's top level. Anything else may
    /// hold another value there: one the body computes (`x[k]`) holds another iteration's,
    /// and one the reverse sweep never reads is not restored.
    fn checkable_before(&self) -> impl Fn(&Code) -> bool + '_ {
        move |at: &Code| {
            at.reads.iter().all(|&r| {
                matches!(self.f.vars[r].role, Role::LoopIndex | Role::Param { .. })
                    || self.decl[r] == crate::emit::Decl::InPlace
            })
        }
    }

    /// Before a loop whose reverse runs ascending: the bounds check of the last iteration's
    /// element of each slice its body's own statements load at an index other than `i ± k`
    /// (`xs[s * d + j]`, and so the store into the shadow, `w_bar[c * d + j]`). Ascending,
    /// every iteration is checked where descending the first check covered the rest; checked
    /// once, LLVM drops the checks inside and vectorises (the MLP's inner loop: 1.09 → 1.01–1.03
    /// × descending). The forward loop loaded these elements, with the same values of every
    /// variable the index reads ([`Emitter::checkable_before`]), so the checks never fail.
    fn ascending_precheck(&self, s: &Stmt) -> TokenStream {
        let Stmt::For {
            index, range, body, ..
        } = s
        else {
            return quote!();
        };
        let index = *index;
        let checkable = self.checkable_before();
        let i = self.ident(index).to_string();
        let (lo, hi) = (self.ident(range.start), self.ident(range.end));
        let mut checks = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for t in &body.stmts {
            let Stmt::Assign { temps, .. } = t else {
                continue;
            };
            for n in temps {
                if let Rhs::Load { buf, index: at } = &n.rhs {
                    if self.f.vars[*buf].sort != Sort::Slice
                        || self.offset(at, index).is_some()
                        || !checkable(at)
                    {
                        continue;
                    }
                    // A window covers the access: it checked the loop's elements already.
                    let at_s = at.tokens.to_string();
                    let windowed = self.windowed.borrow();
                    let through = |b: &Ident| windowed.contains(&(b.to_string(), at_s.clone()));
                    let bar_covered = !self.facts.active[*buf] || through(&self.bar(*buf));
                    if through(&self.ident(*buf)) && bar_covered {
                        continue;
                    }
                    // Once per slice and index (`x[k] * x[k]` loads twice).
                    if !seen.insert((*buf, at.tokens.to_string())) {
                        continue;
                    }
                    let last = replace_ident(at.tokens.clone(), &i, &quote!((#hi - 1)));
                    let b = self.ident(*buf);
                    checks.push(quote!(let _ = &#b[#last];));
                    if self.facts.active[*buf] {
                        let bar = self.bar(*buf);
                        checks.push(quote!(let _ = &#bar[#last];));
                    }
                }
            }
        }
        if checks.is_empty() {
            return quote!();
        }
        quote!(if #lo < #hi { #(#checks)* })
    }

    /// The temporaries of an assignment inside a loop that the forward sweep pushes on
    /// `__temps` and the reverse pops instead of recomputing them: the expensive ones
    /// (`Op::expensive`) among those the reverse needs. In a fused loop (below its top level,
    /// where the forward's values are still in scope) the tape holds one iteration at a time;
    /// in a loop that replays, every iteration's (an LSTM's `tanh` of the cell state: a load
    /// instead of a `tanh` per cell and step). Forward and reverse compute the same set, so
    /// pushes and pops pair up.
    pub fn saved_temps(&self, s: &Stmt) -> Vec<bool> {
        let Stmt::Assign {
            site, temps, place, ..
        } = s
        else {
            return Vec::new();
        };
        let looped = self.facts.in_fused(*site) || self.facts.in_loop(*site);
        if !looped || !self.facts.place_active(place) || self.no_saves.contains(site) {
            return vec![false; temps.len()];
        }
        let root = crate::analyse::reused_root(self.facts, s);
        let need = self.needed_temps(temps, root);
        temps
            .iter()
            .zip(need)
            .map(|(n, need)| match &n.rhs {
                Rhs::Op { .. } if self.kept_partials(*site, n) => self.facts.active[n.id],
                Rhs::Op { op, .. } => need && op.expensive(),
                // (Only its partials are kept: not where the reverse reads its value too.)
                Rhs::Call { .. } => !need && self.scalar_call(n),
                _ => false,
            })
            .collect()
    }

    /// The seed of merged loop `id` whose sums are used after it, linearly
    /// (`Emitter::linear_uses`): for each sum `v`, each use's reverse, adding only to `v`'s
    /// adjoint, run before
    /// the loop. What the use reads besides `v` holds its value there already, and `v`'s part
    /// of the use's partials does not depend on `v`; the temporaries are computed again (the
    /// use's forward comes after the loop), and nothing is popped.
    pub fn seed(&mut self, id: SiteId) -> TokenStream {
        let Some(seeds) = self.seeds.get(&id).cloned() else {
            return quote!();
        };
        let zero = std::mem::take(&mut *self.zero.borrow_mut());
        let depth = self.depth;
        self.depth = depth.max(1);
        let mut out = TokenStream::new();
        for (v, site) in seeds
            .into_iter()
            .flat_map(|(v, uses)| uses.into_iter().map(move |u| (v, u)))
        {
            let Some(s) = self.fused_stmt(site) else {
                continue;
            };
            let fresh = self.no_saves.insert(site);
            self.leaf_only.set(Some(v));
            out.extend(self.rev_region(s));
            self.leaf_only.set(None);
            if fresh {
                self.no_saves.remove(&site);
            }
        }
        self.depth = depth;
        *self.zero.borrow_mut() = zero;
        out
    }

    /// Whether a temporary of the assignment at `site` is kept by its partials, computed by the
    /// forward sweep, rather than by its value: an operation whose partials are expensive
    /// (`Op::partials_expensive`) in a fused loop, outside the loops it nests, whose reverse
    /// runs in the same iteration (where the reverse reads its value too, that is recomputed).
    /// Below the fused loop's top level (in a branch), the forward's `x.cos()` is out of the
    /// reverse's reach; at the top level, `saved_temps` keeps nothing and LLVM merges the two.
    pub fn kept_partials(&self, site: SiteId, n: &Node) -> bool {
        matches!(&n.rhs, Rhs::Op { op, .. } if op.partials_expensive())
            && self.facts.in_fused(site)
            && !self.facts.in_loop(site)
    }

    /// The locals that hold an operation's kept partials (`kept_partials`) from the forward
    /// sweep to the reverse, declared with the function's other floats: the statement runs
    /// once per iteration of the fused loop, whose reverse follows in the same iteration.
    pub fn kept_names(n: &Node, k: usize) -> Vec<Ident> {
        (0..k)
            .map(|k| format_ident!("__kept{}x{}", n.id, k, span = Span::mixed_site()))
            .collect()
    }

    /// Whether the forward sweep pushes anything of assignment `s` onto `__temps`.
    pub fn pushes_temps(&self, s: &Stmt) -> bool {
        let Stmt::Assign { site, temps, .. } = s else {
            return false;
        };
        let saved = self.saved_temps(s);
        temps
            .iter()
            .zip(saved)
            .any(|(n, k)| k && !self.kept_partials(*site, n))
    }

    /// The partials of an operation the forward sweep computes to keep (`kept_partials`):
    /// `(names, call of the rule)`.
    pub fn partials_call(&self, n: &Node) -> (Vec<proc_macro2::Ident>, TokenStream) {
        let Rhs::Op { op, args, .. } = &n.rhs else {
            return (Vec::new(), quote!());
        };
        let t = &self.t;
        let zero = quote!(0.0 as #t);
        let (needs, result) = self.value_needs(*op, args);
        let vals: Vec<TokenStream> = args
            .iter()
            .zip(&needs)
            .map(|(a, &n)| if n { self.operand(a) } else { zero.clone() })
            .chain([if result {
                let id = self.ident(n.id);
                quote!(#id)
            } else {
                zero.clone()
            }])
            .collect();
        let rule = Ident::new(op.name(), proc_macro2::Span::call_site());
        let rules = fixed("__r");
        let ds = Self::op_partials(n, args.len());
        (ds, quote!(#rules::#rule(#(#vals),*)))
    }

    /// The names of an operation's partials, one per argument.
    fn op_partials(n: &Node, k: usize) -> Vec<Ident> {
        (0..k)
            .map(|k| format_ident!("__d{}x{}", n.id, k, span = Span::mixed_site()))
            .collect()
    }

    /// An active call of another `#[gradient]` function of floats only: in a loop, the forward
    /// sweep calls its `_grad` and keeps the partials (split mode), instead of the reverse
    /// calling it again (an LSTM's `sigmoid`: its `exp` and division once per gate and step,
    /// not twice).
    pub fn scalar_call(&self, n: &Node) -> bool {
        matches!(&n.rhs, Rhs::Call { args, .. }
            if self.facts.active[n.id] && args.iter().all(|a| matches!(a, CallArg::Float(_))))
    }

    /// The names of a call's partials, one per argument.
    pub fn call_partials(n: &Node) -> Vec<proc_macro2::Ident> {
        let Rhs::Call { args, .. } = &n.rhs else {
            return Vec::new();
        };
        (0..args.len())
            .map(|k| format_ident!("__d{}x{}", n.id, k, span = Span::mixed_site()))
            .collect()
    }

    /// Which temporaries of a statement the reverse sweep must recompute: the operands and
    /// results of rules whose partials depend on values, and what those are computed from.
    fn needed_temps(&self, temps: &[Node], root: Option<VarId>) -> Vec<bool> {
        let mut need = self.read_temps(temps, root);
        let pos = |id: VarId| temps.iter().position(|n| n.id == id);
        // Close over dependencies: a needed temporary needs its operands (children come first).
        for k in (0..temps.len()).rev() {
            if !need[k] {
                continue;
            }
            let mut deps = Vec::new();
            match &temps[k].rhs {
                Rhs::Op { args, .. } => deps.extend(args.iter()),
                Rhs::Call { args, .. } => deps.extend(args.iter().filter_map(|a| match a {
                    CallArg::Float(o) => Some(o),
                    _ => None,
                })),
                _ => {}
            }
            for d in deps {
                if let Operand::Var(v) = d {
                    if let Some(p) = pos(*v) {
                        need[p] = true;
                    }
                }
            }
        }
        need
    }

    /// The temporaries of a statement whose values the partials read: the operands and results
    /// of rules whose partials depend on values. The forward sweep names these; it writes the
    /// others into the expressions that use them.
    pub fn read_temps(&self, temps: &[Node], root: Option<VarId>) -> Vec<bool> {
        let mut need = vec![false; temps.len()];
        let pos = |id: VarId| temps.iter().position(|n| n.id == id);
        // (A seed, `Emitter::seed`, runs only the rules on the way to its variable.)
        let leads = self.leaf_only.get().map(|v| leads_to(temps, v));
        for (k, node) in temps.iter().enumerate() {
            if !self.facts.active[node.id] || leads.as_ref().is_some_and(|l| !l[k]) {
                continue;
            }
            match &node.rhs {
                Rhs::Op { op, args, .. } => {
                    let (needs, result) = self.value_needs(*op, args);
                    let result = result && Some(node.id) != root;
                    if result {
                        need[k] = true;
                    }
                    for (a, n) in args.iter().zip(needs) {
                        if let (Operand::Var(v), true) = (a, n || result) {
                            if let Some(p) = pos(*v) {
                                need[p] = true;
                            }
                        }
                    }
                }
                Rhs::Call { args, .. } => {
                    for a in args {
                        if let CallArg::Float(Operand::Var(v)) = a {
                            if let Some(p) = pos(*v) {
                                need[p] = true;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        need
    }

    /// Whether a slice parameter or buffer is a fixed-size array (its shadow is copied, not
    /// allocated).
    fn is_array(&self, v: VarId) -> bool {
        match self.f.vars[v].sort {
            Sort::Buffer => self.f.vars[v].array_len.is_some(),
            _ => self.f.params.iter().find(|p| p.var == v).and_then(|p| p.shadow_ty.as_ref()).is_some_and(
                |ty| matches!(ty, syn::Type::Reference(r) if matches!(&*r.elem, syn::Type::Array(_))),
            ),
        }
    }

    /// Which arguments' values, and whether the result's value, the partials of the active
    /// arguments of `op` read.
    fn value_needs(&self, op: crate::intrinsics::Op, args: &[Operand]) -> (Vec<bool>, bool) {
        let active: Vec<bool> = args.iter().map(|a| self.facts.operand_active(a)).collect();
        let mut needs = crate::intrinsics::value_needs(op, &active);
        let result = needs.pop().unwrap_or(false);
        (needs, result)
    }

    /// The active temporaries an adjoint reaches from the assigned value (a piecewise-constant
    /// operation, whose result is inactive, stops it).
    fn reached_temps(&self, temps: &[Node], value: &Operand) -> Vec<bool> {
        let pos = |o: &Operand| match o {
            Operand::Var(v) if self.facts.active[*v] => temps.iter().position(|n| n.id == *v),
            _ => None,
        };
        let mut reached = vec![false; temps.len()];
        if let Some(p) = pos(value) {
            reached[p] = true;
        }
        for k in (0..temps.len()).rev() {
            if !reached[k] {
                continue;
            }
            match &temps[k].rhs {
                Rhs::Op { args, .. } => args.iter().filter_map(pos).for_each(|p| reached[p] = true),
                Rhs::Call { args, .. } => args
                    .iter()
                    .filter_map(|a| match a {
                        CallArg::Float(o) => pos(o),
                        _ => None,
                    })
                    .for_each(|p| reached[p] = true),
                _ => {}
            }
        }
        reached
    }

    /// The register of `buf[i + k]` of the innermost carrying loop.
    fn shift_acc(&self, buf: VarId, k: isize) -> Ident {
        let index = self.shift.as_ref().map_or(0, |c| c.borrow().index);
        Emitter::acc_ident(index, buf, k)
    }

    /// Adds `contrib` to the adjoint of operand `o`.
    fn accumulate(&self, temps: &[Node], o: &Operand, contrib: Adj) -> TokenStream {
        let t = &self.t;
        match o {
            Operand::Var(v) if self.facts.active[*v] => {
                let bar = self.bar(*v);
                let temp = temps.iter().any(|n| n.id == *v);
                // A merged loop's seed, or the rest of the statement (`Emitter::seed`).
                if !temp
                    && (self.leaf_only.get().is_some_and(|only| only != *v)
                        || self.skip_now.borrow().contains(v))
                {
                    return quote!();
                }
                if temp {
                    // A temporary has one use: its adjoint is this contribution.
                    if let Adj::Expr(e) = contrib {
                        self.temp_adj
                            .borrow_mut()
                            .insert(*v, Adj::Name(false, bar.clone()));
                        quote!(let #bar: #t = #e;)
                    } else {
                        self.temp_adj.borrow_mut().insert(*v, contrib);
                        quote!()
                    }
                } else if let Some(leaves) = self.leaves.borrow_mut().as_mut() {
                    // The increment's own operand (the first unit contribution to the target).
                    if self.increment_var.get() == Some(*v) && matches!(contrib, Adj::One(false)) {
                        self.increment_var.set(None);
                        return quote!();
                    }
                    leaves.push((Leaf::Var(*v), contrib));
                    quote!()
                } else if self.zero.borrow_mut().remove(v) {
                    quote!(#bar = #contrib;)
                } else {
                    quote!(#bar += #contrib;)
                }
            }
            _ => quote!(),
        }
    }

    fn node_adjoint(&self, temps: &[Node], node: &Node) -> TokenStream {
        let t = &self.t;
        let bar = self
            .temp_adj
            .borrow_mut()
            .remove(&node.id)
            .unwrap_or_else(|| Adj::Name(false, self.bar(node.id)));
        match &node.rhs {
            Rhs::Op { op, args, int_arg } => {
                // Sums and negations have partials ±1 (`rules::add`, `sub`, `neg`): the adjoint
                // passes on as it is or negated, with nothing to call.
                let signs: Option<&[bool]> = match op {
                    crate::intrinsics::Op::Add => Some(&[false, false]),
                    crate::intrinsics::Op::Sub => Some(&[false, true]),
                    crate::intrinsics::Op::Neg => Some(&[true]),
                    _ => None,
                };
                if let Some(signs) = signs {
                    let acc = args.iter().zip(signs).map(|(a, &neg)| {
                        let contrib = if neg { bar.clone().neg() } else { bar.clone() };
                        self.accumulate(temps, a, contrib)
                    });
                    return quote!(#(#acc)*);
                }
                // A product's partials are the other factor (`rules::mul`).
                if let (crate::intrinsics::Op::Mul, [a, b]) = (op, args.as_slice()) {
                    let name = |o: &Operand| match o {
                        Operand::Var(v) => Some(self.ident(*v)),
                        Operand::Const(_) => None,
                    };
                    let (na, nb) = (name(a), name(b));
                    let (va, vb) = (self.operand(a), self.operand(b));
                    // (In the order emitted: `accumulate` tracks which adjoints are zero.)
                    let acc_a = self.accumulate(temps, a, bar.times(vb, nb.as_ref()));
                    let acc_b = self.accumulate(temps, b, bar.times(va, na.as_ref()));
                    return quote!(#acc_a #acc_b);
                }
                let rule = Ident::new(op.name(), proc_macro2::Span::call_site());
                // Values the used partials do not read are passed as zeros, so that nothing is
                // kept or recomputed for them.
                let (needs, result) = self.value_needs(*op, args);
                // A result read back from the target: its operands are passed only if the
                // partials read them.
                let from_args = result && Some(node.id) != self.root;
                let zero = quote!(0.0 as #t);
                let y = if Some(node.id) == self.root {
                    fixed("__y")
                } else {
                    self.ident(node.id)
                };
                let vals: Vec<TokenStream> = args
                    .iter()
                    .zip(&needs)
                    .map(|(a, &n)| {
                        if n || from_args {
                            self.operand(a)
                        } else {
                            zero.clone()
                        }
                    })
                    .chain([if result { quote!(#y) } else { zero.clone() }])
                    .collect();
                // Named per node: the sums of partials read them after later nodes' rules.
                let ds = Self::op_partials(node, args.len());
                let rules = fixed("__r");
                let call = match op.kind() {
                    Kind::PowI => {
                        let n = &int_arg.as_ref().expect("powi has an exponent").tokens;
                        let (x, y) = (&vals[0], &vals[1]);
                        quote!(#rules::#rule(#x, #n, #y))
                    }
                    _ => quote!(#rules::#rule(#(#vals),*)),
                };
                let lhs = if ds.len() == 1 {
                    let d = &ds[0];
                    quote!(#d)
                } else {
                    quote!((#(#ds),*))
                };
                let acc: Vec<_> = args
                    .iter()
                    .zip(&ds)
                    .map(|(a, d)| self.accumulate(temps, a, bar.times(quote!(#d), Some(d))))
                    .collect();
                if self.popped_calls.borrow_mut().remove(&node.id) {
                    // The partials came off `__temps`: the forward sweep computed them.
                    return quote!(#(#acc)*);
                }
                quote!(let #lhs = #call; #(#acc)*)
            }
            Rhs::Load { buf, index } => {
                let g = fixed("__g");
                if self.increment == Some(node.id) || self.leaf_only.get().is_some() {
                    return quote!();
                }
                if let Some((b, k)) = self.shifted(*buf, index) {
                    // Summed with the statement's other loads of the same element.
                    if let Some(leaves) = self.leaves.borrow_mut().as_mut() {
                        leaves.push((Leaf::Acc(b, k), bar));
                        return quote!();
                    }
                    let acc = self.shift_acc(b, k);
                    let c = bar.scaled(&g);
                    return quote!(#acc += #c;);
                }
                self.direct.borrow_mut().insert(*buf);
                if let Some(h) = self.hoisted_load(*buf, index) {
                    let c = bar.scaled(&g);
                    return quote!(#h += #c;);
                }
                let b = self.bar(*buf);
                let i = &index.tokens;
                let c = bar.scaled(&g);
                quote!(#b[#i] += #c;)
            }
            Rhs::Call { path, args } => {
                let mut grad_path = path.clone();
                if let Some(last) = grad_path.segments.last_mut() {
                    last.ident = crate::emit::companion_name(&last.ident);
                }
                let mut call_args = Vec::new();
                let mut allocs = Vec::new();
                let mut after = Vec::new();
                let mut ds = Vec::new();
                let mut float_args = Vec::new();
                for (k, a) in args.iter().enumerate() {
                    call_args.push(self.call_arg(a));
                    match a {
                        CallArg::Float(o) => {
                            let d =
                                format_ident!("__d{}x{}", node.id, k, span = Span::mixed_site());
                            ds.push(d.clone());
                            float_args.push((o, d));
                        }
                        CallArg::Slice(v) => {
                            // The callee overwrites the shadow it is given: give it a fresh one
                            // and add it, times this node's adjoint, into ours.
                            let s = format_ident!("__s{}", k, span = Span::mixed_site());
                            let id = self.ident(*v);
                            let local = self.f.vars[*v].sort == Sort::Buffer;
                            allocs.push(if self.is_array(*v) && local {
                                quote!(let mut #s = #id;)
                            } else if self.is_array(*v) {
                                quote!(let mut #s = *#id;)
                            } else {
                                quote!(let mut #s = #FILLED(0.0 as #t, #id.len());)
                            });
                            call_args.push(quote!(&mut #s));
                            if self.facts.active[*v] {
                                self.direct.borrow_mut().insert(*v);
                                let vb = self.bar(*v);
                                let scaled = bar.scaled(&fixed("__g"));
                                after.push(quote! {
                                    for (__a, __b) in #vb.iter_mut().zip(#s.iter()) {
                                        *__a += (#scaled) * *__b;
                                    }
                                });
                            }
                        }
                        CallArg::Other(_) => {}
                    }
                }
                let acc: Vec<_> = float_args
                    .iter()
                    .map(|(o, d)| self.accumulate(temps, o, bar.times(quote!(#d), Some(d))))
                    .collect();
                if self.popped_calls.borrow_mut().remove(&node.id) {
                    // The partials came off `__temps`: the forward sweep computed them.
                    return quote!(#(#acc)*);
                }
                quote! {
                    #(#allocs)*
                    let (_, [#(#ds),*]) = #grad_path(#(#call_args),*);
                    #(#after)*
                    #(#acc)*
                }
            }
            Rhs::Expr(_) => quote!(),
        }
    }
}

/// Which temporaries of a statement are operations that read `v`, directly or through other
/// such temporaries (children come first).
fn leads_to(temps: &[Node], v: VarId) -> Vec<bool> {
    let mut leads = vec![false; temps.len()];
    for k in 0..temps.len() {
        leads[k] = match &temps[k].rhs {
            Rhs::Op { args, .. } => args
                .iter()
                .filter_map(Operand::var)
                .any(|w| w == v || temps[..k].iter().zip(&leads).any(|(n, l)| *l && n.id == w)),
            _ => false,
        };
    }
    leads
}

/// In `x[i] = x[i] + e` (or `e + x[i]`, as `x[i] += e` lowers), the temporary that loads the
/// target element: its partial is exactly 1.
/// Whether `v = v + e`, `v = e + v` or `v = v - e`: `v` an operand of the statement's last
/// operation, with partial 1 (the first unit contribution to `v`'s adjoint in the reverse).
pub(crate) fn var_increment(temps: &[Node], value: &Operand, v: VarId) -> bool {
    let Some(root) = temps.iter().find(|n| Some(n.id) == value.var()) else {
        return false;
    };
    match &root.rhs {
        Rhs::Op {
            op: crate::intrinsics::Op::Add,
            args,
            ..
        } => args.iter().any(|a| a.var() == Some(v)),
        Rhs::Op {
            op: crate::intrinsics::Op::Sub,
            args,
            ..
        } => args.first().and_then(Operand::var) == Some(v),
        _ => false,
    }
}

fn increment_load(temps: &[Node], value: &Operand, buf: VarId, index: &Code) -> Option<VarId> {
    let root = temps.iter().find(|n| Some(n.id) == value.var())?;
    let Rhs::Op {
        op: crate::intrinsics::Op::Add,
        args,
        ..
    } = &root.rhs
    else {
        return None;
    };
    let at = index.tokens.to_string();
    args.iter().filter_map(Operand::var).find(|v| {
        temps.iter().any(|n| {
            n.id == *v
                && matches!(&n.rhs, Rhs::Load { buf: b, index: i }
                    if *b == buf && i.tokens.to_string() == at)
        })
    })
}

/// `tokens` with every identifier spelled `name` replaced by `with`, inside groups too.
pub(crate) fn replace_ident(tokens: TokenStream, name: &str, with: &TokenStream) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    tokens
        .into_iter()
        .flat_map(|t| -> Vec<TokenTree> {
            match t {
                TokenTree::Ident(id) if id == name => with.clone().into_iter().collect(),
                TokenTree::Group(g) => {
                    let mut out = Group::new(g.delimiter(), replace_ident(g.stream(), name, with));
                    out.set_span(g.span());
                    vec![TokenTree::Group(out)]
                }
                other => vec![other],
            }
        })
        .collect()
}
