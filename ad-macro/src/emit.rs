//! Emission: IR + facts → the tokens of `f_grad`.
//!
//! This module owns names, declarations and the forward sweep; `adjoint.rs` writes the reverse
//! sweep. Every generated local is named `<base>_<id>` (`<base>` is the user's name or a
//! generated word, `<id>` the variable's number) or a fixed name beginning with `__` that does
//! not end in `_<digits>`, and carries `Span::mixed_site()`: user code copied into the output
//! cannot see them, and two of them can never be equal.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::analyse::{Facts, Save};
use crate::ir::*;

pub fn var_ident(var: &Var, id: VarId) -> Ident {
    Ident::new(&format!("{}_{}", var.name, id), Span::mixed_site())
}

/// Whether `tokens` is one identifier (a variable).
pub fn one_ident(tokens: &TokenStream) -> bool {
    let mut it = tokens.clone().into_iter();
    matches!(
        (it.next(), it.next()),
        (Some(proc_macro2::TokenTree::Ident(_)), None)
    )
}

pub fn fixed(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// How a variable is declared in `f_grad`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decl {
    /// Parameters, loop indices and temporaries: bound where they are defined.
    Bound,
    /// Defined once at the top level of the body: `let` at that point.
    InPlace,
    /// Declared with a default value before the forward sweep, assigned afterwards.
    Hoisted,
}

pub struct Emitter<'a> {
    pub f: &'a Func,
    pub facts: &'a Facts,
    pub decl: Vec<Decl>,
    /// Each variable's name and its adjoint's, made once (an identifier is formatted, checked
    /// and interned by rustc's proc-macro bridge when made; cloned, it is copied).
    names: Vec<(Ident, Ident)>,
    /// `__F`, the body's alias of `::core::primitive::f64` (or `f32`): one token per
    /// annotation instead of nine (expansion time grows with the tokens emitted).
    pub t: Ident,
    /// Nesting depth of regions while emitting (0: the function's top-level block).
    pub depth: usize,
    /// False while re-running forward code inside the reverse sweep: nothing is saved.
    pub record: bool,
    /// Number of loops around the statement being emitted.
    pub loops: usize,
    /// Adjoints declared before a fused loop (not again between the sweeps).
    pub early: Vec<bool>,
    /// Inside a fused loop's reverse: the loop's shifted accumulators (see [`Shift`]).
    pub shift: Option<std::cell::RefCell<Shift>>,
    /// Float variables whose adjoint is known to be zero at this point of the reverse sweep:
    /// their first contribution is an assignment, not an addition to zero (which the compiler
    /// must keep, as `0.0 + x` is not `x` when `x` is `-0.0`). Emptied around nested regions.
    pub zero: std::cell::RefCell<std::collections::BTreeSet<VarId>>,
    /// While emitting one assignment's reverse: the partials of the variables it reads, summed
    /// and multiplied by the target's adjoint at the end (see `adjoint.rs`).
    pub leaves: std::cell::RefCell<Option<Vec<(Leaf, crate::adjoint::Adj)>>>,
    /// While emitting one assignment's reverse: the adjoints of its temporaries, set by the
    /// node that uses each.
    pub temp_adj: std::cell::RefCell<std::collections::HashMap<VarId, crate::adjoint::Adj>>,
    /// While emitting one assignment's reverse: its last operation, if its result is read back
    /// from the target (`analyse::reused_root`).
    pub root: Option<VarId>,
    /// While emitting one assignment's reverse: the load of its own target in an increment
    /// `x[i] = x[i] + e`, whose adjoint contribution (the target's, unchanged) is not written.
    pub increment: Option<VarId>,
    /// While emitting one assignment's reverse: its target, in an increment `s = s + e` whose
    /// unit contribution to the target is not written.
    pub increment_var: std::cell::Cell<Option<VarId>>,
    /// While emitting the forward sweep of a fused loop's body.
    pub in_fused: bool,
    /// Reversed loops around the statement being emitted, outermost first (`adjoint::Hoist`).
    pub hoist: std::cell::RefCell<Vec<crate::adjoint::Hoist>>,
    /// Shadows written other than through the fused loop's own [`Shift`] registers (indexed or
    /// hoisted `+=`, a call's slice argument, an inner replayed loop's registers), while a fused
    /// loop's reverse is emitted.
    pub direct: std::cell::RefCell<std::collections::BTreeSet<VarId>>,
    /// Slice parameters whose shadow some fused loop emitted so far has written: until then
    /// it holds only the zeros it was filled with.
    pub shadow_written: std::collections::BTreeSet<VarId>,
    /// Slice parameters whose shadow a fused loop stores entirely before anything else writes
    /// it: `f_grad` need not fill it with zeros first.
    pub covered: std::collections::BTreeSet<VarId>,
    /// Registers made so far for hoisted adjoints (for unique names).
    pub hoist_count: std::cell::Cell<usize>,
    /// Set by a loop's reverse for its body: adjoints zero when each iteration starts.
    pub loop_zero: std::cell::RefCell<std::collections::BTreeSet<VarId>>,
    /// Tape saves written into a slot of [`Tape::slots`] instead of pushed: the slot's index,
    /// by site (see [`Emitter::slot_tapes`]).
    slot_sites: std::cell::RefCell<std::collections::HashMap<SiteId, TokenStream>>,
    /// For fused loops with a deferred seed (`fuse::Deferred`): the code their place in the
    /// reverse sweep runs, by loop id.
    pub deferred_rev: std::collections::HashMap<SiteId, TokenStream>,
    /// Windows made so far (for unique names, `window.rs`).
    pub window_count: std::cell::Cell<usize>,
    /// The accesses (memory's name, index) the last loop's windows took over, or would have
    /// had the loop's code made them (it makes none).
    pub windowed: std::cell::RefCell<std::collections::BTreeSet<(String, String)>>,
    /// Memory whose length never changes: slice parameters, and local buffers declared only
    /// at the top level of the body (the ones windows may be taken of).
    pub fixed_len: std::collections::BTreeSet<VarId>,
    /// Calls whose partials the reverse of the current statement popped from `__temps`
    /// (`Emitter::scalar_call`).
    pub popped_calls: std::cell::RefCell<std::collections::BTreeSet<VarId>>,
    /// Inner loops of a fused loop that run their reverse in the same pass as their forward
    /// ([`Emitter::merged_loops`]), by id.
    pub merged: std::collections::BTreeSet<SiteId>,
    /// While a merged loop's forward is emitted: its reverse's code is wanted in pieces
    /// (before the loop, the body, after the loop), left in `captured`.
    pub capturing: bool,
    pub captured: Option<[TokenStream; 3]>,
    /// Shadows the reverse of merged loops wrote, emitted during the forward sweep (for
    /// [`Emitter::direct`]).
    pub merged_direct: std::collections::BTreeSet<VarId>,
    /// Assignments in merged loops: they keep nothing on `__temps` (the reverse reads the
    /// forward's values in the same iteration).
    pub no_saves: std::collections::BTreeSet<SiteId>,
    /// Merged loops whose sum is used after them, linearly (`Emitter::linear_uses`): by loop
    /// id, the sum and the statements using it, whose part for the sum's adjoint runs before
    /// the loop (the seed).
    pub seeds: std::collections::HashMap<SiteId, Vec<(VarId, Vec<SiteId>)>>,
    /// While a seed is emitted: only the adjoint of this variable is added to.
    pub leaf_only: std::cell::Cell<Option<VarId>>,
    /// While a statement of `leaf_skip` is emitted: the variables left out.
    pub skip_now: std::cell::RefCell<Vec<VarId>>,
    /// Statements (by site) whose reverse leaves out the adjoint of a variable: the seed of a
    /// merged loop added it already.
    pub leaf_skip: std::collections::HashMap<SiteId, Vec<VarId>>,
    /// Runs of adjacent loops whose reverses run as one loop (`jam.rs`), by the id of the
    /// last loop of each.
    pub jams: std::collections::HashMap<SiteId, std::rc::Rc<crate::jam::Jam>>,
}

/// What receives a statement's summed partials at the end of its reverse.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Leaf {
    /// The adjoint of a float variable.
    Var(VarId),
    /// The register accumulating the adjoint of `buf[i + k]` in a fused loop ([`Shift`]).
    Acc(VarId, isize),
}

/// Adjoints of loads `buf[i + k]` of memory a fused loop only reads (`i` its index, `k` a small
/// constant), kept in registers. The iteration sums its contributions to `buf[i + k]` in
/// `__acc<buf>x<k>`, then adds the finished element `buf[i]` to memory once and carries the
/// others to the next iteration (`__carry<buf>x<k>` holds element `i + 1 + k`). Without this,
/// `x_bar[i] += ...; x_bar[i + 1] += ...` in every iteration reloads what the previous one
/// stored, and vectorised as one 16-byte access it defeats store forwarding (4 to 5 times
/// slower on extended Rosenbrock).
#[derive(Default)]
pub struct Shift {
    pub index: VarId,
    pub read_only: std::collections::BTreeSet<VarId>,
    /// Smallest and largest offsets used, by buffer.
    pub used: std::collections::BTreeMap<VarId, (isize, isize)>,
    /// Accumulators some contribution has reached in the reverse emitted so far: until then a
    /// contribution at the body's top level assigns instead of adding to zero.
    pub assigned: std::collections::BTreeSet<(VarId, isize)>,
    /// The depth at which the loop body's own statements are emitted.
    pub depth: usize,
}

/// The most elements carried from one iteration to the next, per buffer.
const MAX_SHIFT: isize = 4;

impl<'a> Emitter<'a> {
    pub fn new(f: &'a Func, facts: &'a Facts) -> Self {
        let mut decl: Vec<Decl> = f
            .vars
            .iter()
            .map(|v| match v.role {
                Role::Param { .. } | Role::LoopIndex | Role::Temp => Decl::Bound,
                _ => Decl::Hoisted,
            })
            .collect();
        // A variable defined exactly once, at the top level, is declared where it is defined.
        let mut defs = vec![0usize; f.vars.len()];
        f.body.walk(&mut |s| match s {
            Stmt::Assign {
                place: Place::Var(v),
                ..
            }
            | Stmt::Set { dst: v, .. } => defs[*v] += 1,
            // Element writes do not declare a buffer; only its declarations count.
            Stmt::BufDecl { buf, .. } => defs[*buf] += 1,
            Stmt::For { index, exit, .. } => {
                defs[*index] += 1;
                if let Some(e) = exit {
                    defs[e.trips] += 1;
                }
            }
            Stmt::While { trips, .. } => defs[*trips] += 1,
            _ => {}
        });
        for s in &f.body.stmts {
            let v = match s {
                Stmt::Assign {
                    place: Place::Var(v),
                    ..
                }
                | Stmt::Set { dst: v, .. } => Some(*v),
                Stmt::BufDecl { buf, .. } => Some(*buf),
                _ => None,
            };
            if let Some(v) = v {
                if defs[v] == 1 && decl[v] == Decl::Hoisted {
                    decl[v] = Decl::InPlace;
                }
            }
        }
        let names = f
            .vars
            .iter()
            .enumerate()
            .map(|(v, var)| {
                let bar = Ident::new(&format!("{}_{}_bar", var.name, v), Span::mixed_site());
                (var_ident(var, v), bar)
            })
            .collect();
        Emitter {
            f,
            facts,
            decl,
            names,
            t: fixed("__F"),
            depth: 0,
            record: true,
            loops: 0,
            early: vec![false; f.vars.len()],
            shift: None,
            zero: Default::default(),
            leaves: Default::default(),
            temp_adj: Default::default(),
            root: None,
            increment: None,
            increment_var: Default::default(),
            in_fused: false,
            hoist: Default::default(),
            direct: Default::default(),
            shadow_written: Default::default(),
            covered: Default::default(),
            hoist_count: Default::default(),
            loop_zero: Default::default(),
            slot_sites: Default::default(),
            popped_calls: Default::default(),
            deferred_rev: Default::default(),
            window_count: Default::default(),
            windowed: Default::default(),
            fixed_len: fixed_len(f, facts),
            merged: Default::default(),
            capturing: false,
            seeds: Default::default(),
            leaf_only: Default::default(),
            skip_now: Default::default(),
            leaf_skip: Default::default(),
            jams: Default::default(),
            captured: None,
            merged_direct: Default::default(),
            no_saves: Default::default(),
        }
    }

    pub fn ident(&self, v: VarId) -> Ident {
        self.names[v].0.clone()
    }

    pub fn bar(&self, v: VarId) -> Ident {
        self.names[v].1.clone()
    }

    pub fn tape(&self, v: VarId) -> Ident {
        let var = &self.f.vars[v];
        Ident::new(&format!("{}_{}_tape", var.name, v), Span::mixed_site())
    }

    /// The tape of a buffer's whole contents, saved when it is declared again in a loop.
    pub fn decl_tape(&self, v: VarId) -> Ident {
        let var = &self.f.vars[v];
        Ident::new(&format!("{}_{}_decls", var.name, v), Span::mixed_site())
    }

    pub fn slot(&self, v: VarId, site: SiteId) -> Ident {
        let var = &self.f.vars[v];
        Ident::new(&format!("{}_{}_s{}", var.name, v, site), Span::mixed_site())
    }

    pub fn operand(&self, o: &Operand) -> TokenStream {
        match o {
            Operand::Var(v) => {
                let i = self.ident(*v);
                quote!(#i)
            }
            Operand::Const(t) => t.clone(),
        }
    }

    /// The forward value of one node.
    pub fn node_expr(&self, node: &Node) -> TokenStream {
        match &node.rhs {
            Rhs::Op { op, args, int_arg } => {
                let args: Vec<_> = args.iter().map(|a| self.operand(a)).collect();
                op.forward(&args, int_arg.as_ref().map(|c| &c.tokens), node.span)
            }
            Rhs::Load { buf, index } => {
                let b = self.ident(*buf);
                let i = &index.tokens;
                quote!(#b[#i])
            }
            Rhs::Call { path, args } => {
                let args = args.iter().map(|a| self.call_arg(a));
                quote!(#path(#(#args),*))
            }
            Rhs::Expr(c) => c.tokens.clone(),
        }
    }

    pub fn call_arg(&self, a: &CallArg) -> TokenStream {
        match a {
            CallArg::Float(o) => self.operand(o),
            CallArg::Slice(v) => {
                let i = self.ident(*v);
                if self.f.vars[*v].sort == Sort::Buffer {
                    quote!(&#i)
                } else {
                    quote!(#i)
                }
            }
            CallArg::Other(c) => c.tokens.clone(),
        }
    }

    pub fn temps(&self, temps: &[Node], only: Option<&[bool]>) -> TokenStream {
        let t = &self.t;
        let lets = temps
            .iter()
            .enumerate()
            .filter(|(k, _)| only.is_none_or(|o| o[*k]))
            .map(|(_, n)| {
                let id = self.ident(n.id);
                let e = self.node_expr(n);
                // Every temporary is a float of the function's type, inactive ones too (a
                // literal alone would leave the type ambiguous for a method called on it).
                quote!(let #id: #t = #e;)
            });
        quote!(#(#lets)*)
    }

    /// A statement's temporaries as `let`s where `keep` says so or where the value's type would
    /// be ambiguous, each other one written, in parentheses, into the expression that uses it
    /// (every temporary is used once; one used more is named), as long as that keeps the order
    /// of evaluation. Returns the `let`s and the statement's value.
    pub fn inlined_temps(
        &self,
        temps: &[Node],
        keep: &[bool],
        saved: &[bool],
        value: &Operand,
        place: &Place,
    ) -> (TokenStream, TokenStream) {
        let pos = |v: VarId| temps.iter().position(|n| n.id == v);
        // `x[i] += e` on floats evaluates `e` before `x[i]`: a load of the target element may
        // stay written in after later temporaries are named.
        let target = match place {
            Place::Elem { buf, index } => Some((*buf, index.tokens.to_string())),
            Place::Var(_) => None,
        };
        let is_target = |n: &Node| match (&n.rhs, &target) {
            (Rhs::Load { buf, index }, Some((b, i))) => buf == b && index.tokens.to_string() == *i,
            _ => false,
        };
        let mut uses = vec![0usize; temps.len()];
        let mut count = |o: &Operand| {
            if let Some(p) = o.var().and_then(pos) {
                uses[p] += 1;
            }
        };
        for n in temps {
            match &n.rhs {
                Rhs::Op { args, .. } => args.iter().for_each(&mut count),
                Rhs::Call { args, .. } => args.iter().for_each(|a| {
                    if let CallArg::Float(o) = a {
                        count(o)
                    }
                }),
                _ => {}
            }
        }
        count(value);
        let mut inline: Vec<Option<TokenStream>> = vec![None; temps.len()];
        // Whether a temporary's type is known without an annotation (a literal alone, or an
        // arbitrary expression, may be ambiguous).
        let mut typed = vec![false; temps.len()];
        let operand = |o: &Operand, inline: &mut Vec<Option<TokenStream>>| -> TokenStream {
            match o.var().and_then(pos).map(|p| (p, inline[p].take())) {
                // A load binds as tightly as any use of it.
                Some((p, Some(e))) if matches!(temps[p].rhs, Rhs::Load { .. }) => e,
                Some((_, Some(e))) => quote!((#e)),
                _ => self.operand(o),
            }
        };
        let t = &self.t;
        let mut lets = TokenStream::new();
        for (k, n) in temps.iter().enumerate() {
            let mut call_args = Vec::new();
            let (e, ty) = match &n.rhs {
                Rhs::Op { op, args, int_arg } => {
                    let ty = args
                        .iter()
                        .any(|a| a.var().is_some_and(|v| pos(v).is_none_or(|p| typed[p])));
                    let args: Vec<_> = args.iter().map(|a| operand(a, &mut inline)).collect();
                    (
                        op.forward(&args, int_arg.as_ref().map(|c| &c.tokens), n.span),
                        ty,
                    )
                }
                Rhs::Call { path, args } => {
                    let args: Vec<_> = args
                        .iter()
                        .map(|a| match a {
                            CallArg::Float(o) => operand(o, &mut inline),
                            _ => self.call_arg(a),
                        })
                        .collect();
                    let e = quote!(#path(#(#args),*));
                    call_args = args;
                    (e, true)
                }
                Rhs::Load { .. } => (self.node_expr(n), true),
                Rhs::Expr(_) => (self.node_expr(n), false),
            };
            if keep[k] || uses[k] != 1 || !ty {
                // Written-in temporaries not used yet are named first: evaluation (and bounds
                // checks, and calls) stay in the user's order.
                for (p, pending) in inline.iter_mut().enumerate().take(k) {
                    if is_target(&temps[p]) {
                        continue;
                    }
                    if let Some(e) = pending.take() {
                        let id = self.ident(temps[p].id);
                        lets.extend(quote!(let #id: #t = #e;));
                    }
                }
                let id = self.ident(n.id);
                match &n.rhs {
                    // Kept partials: the forward sweep calls `_grad` (split mode).
                    Rhs::Call { path, .. } if saved.get(k) == Some(&true) => {
                        let mut grad_path = path.clone();
                        if let Some(last) = grad_path.segments.last_mut() {
                            last.ident = companion_name(&last.ident);
                        }
                        let ds = Self::call_partials(n);
                        let m = ds.len();
                        let args = &call_args;
                        lets.extend(quote! {
                            let (#id, [#(#ds),*]): (#t, [#t; #m]) = #grad_path(#(#args),*);
                        });
                    }
                    _ => lets.extend(quote!(let #id: #t = #e;)),
                }
            } else {
                inline[k] = Some(e);
            }
            typed[k] = true;
        }
        let val = operand(value, &mut inline);
        (lets, val)
    }

    /// `let` for a variable declared in place, nothing for a hoisted one.
    fn let_for(&self, v: VarId) -> TokenStream {
        if self.decl[v] != Decl::InPlace {
            return quote!();
        }
        let t = &self.t;
        let i = self.ident(v);
        if self.f.vars[v].sort == Sort::Float {
            quote!(let mut #i: #t)
        } else {
            quote!(let mut #i)
        }
    }

    /// The statement that saves `current` before site `site` of `v` overwrites it.
    fn save(&self, site: SiteId, v: VarId, current: TokenStream) -> TokenStream {
        if !self.record || self.facts.end_save.contains(&site) {
            return quote!();
        }
        self.save_now(site, v, current)
    }

    /// The statement that saves `current` for site `site` of `v`, wherever it is placed.
    fn save_now(&self, site: SiteId, v: VarId, current: TokenStream) -> TokenStream {
        match self.facts.save[site] {
            Save::No => quote!(),
            Save::Slot => {
                let s = self.slot(v, site);
                quote!(#s = #current;)
            }
            Save::Tape => {
                let tape = self.tape(v);
                match self.slot_sites.borrow().get(&site) {
                    Some(k) => quote!(#tape[#k] = #current;),
                    None => quote!(#tape.push(#current);),
                }
            }
        }
    }

    /// The statement that restores what `save` saved, into `target`.
    pub fn restore(&self, site: SiteId, v: VarId, target: TokenStream) -> TokenStream {
        if self.facts.end_save.contains(&site) {
            return quote!();
        }
        self.restore_now(site, v, target)
    }

    /// The statement that restores what `save_now` saved, into `target`.
    fn restore_now(&self, site: SiteId, v: VarId, target: TokenStream) -> TokenStream {
        match self.facts.save[site] {
            Save::No => quote!(),
            Save::Slot => {
                let s = self.slot(v, site);
                quote!(#target = #s;)
            }
            Save::Tape => {
                let tape = self.tape(v);
                match self.slot_sites.borrow().get(&site) {
                    Some(k) => quote!(#target = #tape[#k];),
                    None => quote!(#target = #tape.pop();),
                }
            }
        }
    }

    // ----- forward sweep -----

    pub fn fwd_block(&mut self, b: &Block) -> TokenStream {
        // Moved, not copied as `quote!` would (expansion time grows with tokens copied).
        b.stmts.iter().map(|s| self.fwd_stmt(s)).collect()
    }

    /// One statement of the forward sweep (saving overwritten values unless `self.record` is off).
    pub fn fwd_stmt(&mut self, s: &Stmt) -> TokenStream {
        let record = self.record;
        match s {
            Stmt::Assign {
                site,
                place,
                temps,
                value,
                span,
            } => {
                // Temporaries the reverse sweep reads are named; the others are written into
                // the expressions that use them (fewer tokens and locals, and fewer nested
                // `let` scopes: LLVM's debug info overflows its stack on a few thousand).
                let root = crate::analyse::reused_root(self.facts, s);
                let mut keep = self.read_temps(temps, root);
                // (A fused loop's top level, at depth 1, keeps its values in scope.)
                let fused_saves = record && self.depth >= if self.in_fused { 2 } else { 1 };
                let saved = if fused_saves {
                    self.saved_temps(s)
                } else {
                    Vec::new()
                };
                for (k, s) in keep.iter_mut().zip(&saved) {
                    *k |= *s;
                }
                let (mut temps_ts, mut val) =
                    self.inlined_temps(temps, &keep, &saved, value, place);
                let save = match place {
                    _ if !record => quote!(),
                    Place::Var(v) => {
                        let id = self.ident(*v);
                        self.save(*site, *v, quote!(#id))
                    }
                    Place::Elem { buf, index } => {
                        let b = self.ident(*buf);
                        let k = if one_ident(&index.tokens) {
                            index.tokens.clone()
                        } else {
                            let k = fixed("__i");
                            quote!(#k)
                        };
                        self.save(*site, *buf, quote!(#b[#k]))
                    }
                };
                // The value is computed before anything is pushed: a push may reallocate, and
                // loads after a call cannot be moved before it.
                let pushes = fused_saves && saved.contains(&true);
                if pushes || !save.is_empty() {
                    let v = fixed("__v");
                    let t = &self.t;
                    temps_ts.extend(quote!(let #v: #t = #val;));
                    val = quote!(#v);
                }
                // Below a fused loop's top level: keep the expensive results its reverse reads.
                if pushes {
                    let tape = fixed("__temps");
                    let pushes = temps.iter().zip(&saved).filter(|(_, s)| **s).map(|(n, _)| {
                        if matches!(n.rhs, Rhs::Call { .. }) {
                            let ds = Self::call_partials(n);
                            return quote!(#(#tape.push(#ds);)*);
                        }
                        if self.kept_partials(*site, n) {
                            let (ds, call) = self.partials_call(n);
                            let [kept] = &Self::kept_names(n, ds.len())[..] else {
                                unreachable!("only operations of one argument keep partials")
                            };
                            return quote!(#kept = #call;);
                        }
                        let id = self.ident(n.id);
                        quote!(#tape.push(#id);)
                    });
                    temps_ts = quote!(#temps_ts #(#pushes)*);
                }
                let span = *span;
                match place {
                    Place::Var(v) => {
                        let id = self.ident(*v);
                        let let_ = if record { self.let_for(*v) } else { quote!() };
                        if let_.is_empty() {
                            quote_spanned!(span=> #temps_ts #save #id = #val;)
                        } else {
                            quote_spanned!(span=> #temps_ts #let_ = #val;)
                        }
                    }
                    Place::Elem { buf, index } => {
                        let b = self.ident(*buf);
                        let i = &index.tokens;
                        let k = fixed("__i");
                        if save.is_empty() {
                            quote!(#temps_ts #b[#i] = #val;)
                        } else if one_ident(i) {
                            quote!(#temps_ts #save #b[#i] = #val;)
                        } else {
                            quote!(#temps_ts { let #k: usize = #i; #save #b[#k] = #val; })
                        }
                    }
                }
            }
            Stmt::Set { site, dst, code } => {
                let id = self.ident(*dst);
                let c = &code.tokens;
                let let_ = if record { self.let_for(*dst) } else { quote!() };
                if !let_.is_empty() {
                    return quote!(#let_ = #c;);
                }
                let save = if record {
                    self.save(*site, *dst, quote!(#id))
                } else {
                    quote!()
                };
                quote!(#save #id = #c;)
            }
            Stmt::BufDecl { site, buf, init } => {
                let b = self.ident(*buf);
                let c = &init.tokens;
                // Declared in each iteration of a fused loop: its adjoint takes its length.
                let fit = if self.in_fused
                    && record
                    && self.facts.active[*buf]
                    && self.f.vars[*buf].array_len.is_none()
                {
                    let (bar, t) = (self.bar(*buf), &self.t);
                    quote!(#bar.fit(0.0 as #t, #b.len());)
                } else {
                    quote!()
                };
                let let_ = self.let_for(*buf);
                if !let_.is_empty() {
                    return quote!(#let_ = #c; #fit);
                }
                if record && self.facts.save[*site] != Save::No {
                    let tape = self.decl_tape(*buf);
                    quote!(#tape.push(::core::mem::replace(&mut #b, #c)); #fit)
                } else {
                    quote!(#b = #c; #fit)
                }
            }
            Stmt::If {
                flag,
                then_branch,
                else_branch,
            } => {
                let c = self.ident(*flag);
                self.depth += 1;
                let t = self.fwd_block(then_branch);
                let e = self.fwd_block(else_branch);
                self.depth -= 1;
                if else_branch.stmts.is_empty() {
                    quote!(if #c { #t })
                } else {
                    quote!(if #c { #t } else { #e })
                }
            }
            Stmt::For { id, .. } if record && self.facts.fused.contains_key(id) => {
                self.fused_loop(s)
            }
            Stmt::For {
                id,
                index,
                range,
                body,
                exit,
            } => {
                let i = self.ident(*index);
                let iter = self.range_iter(range);
                let slots = if record {
                    self.slot_tapes(s)
                } else {
                    Vec::new()
                };
                self.depth += 1;
                self.loops += 1;
                let b = self.fwd_block(body);
                self.loops -= 1;
                self.depth -= 1;
                let b = if record {
                    let ends = self.end_saves(body, |e, site, v| {
                        let id = e.ident(v);
                        e.save_now(site, v, quote!(#id))
                    });
                    quote!(#b #ends)
                } else {
                    b
                };
                let (windows, b) = if exit.is_none() {
                    self.windows(body, *index, range, b, false)
                } else {
                    (quote!(), b)
                };
                match exit {
                    None => {
                        let reserve = self.reserve(body, &iter, &slots);
                        // (Of memory whose length the loop cannot change.)
                        let windows = if range.adapters.is_empty() {
                            let check = self.bounds_precheck(body, *index, range, true);
                            quote!(#check #windows)
                        } else {
                            windows
                        };
                        if slots.is_empty() && record && self.merged.contains(id) {
                            // Its reverse, in the same iteration (`merged_loops`).
                            let before = self.direct.borrow().clone();
                            self.capturing = true;
                            let _ = self.rev_stmt(s);
                            self.capturing = false;
                            let added: Vec<VarId> =
                                self.direct.borrow().difference(&before).copied().collect();
                            self.merged_direct.extend(added);
                            let seed = self.seed(*id);
                            match self.captured.take() {
                                Some([pre, rev, post]) => quote! {
                                    #reserve #windows #seed #pre for #i in #iter { #b #rev } #post
                                },
                                None => {
                                    self.merged.remove(id);
                                    // Not merged: its uses' reverses keep their whole part.
                                    if let Some(seeds) = self.seeds.remove(id) {
                                        for (v, uses) in seeds {
                                            for u in uses {
                                                if let Some(skip) = self.leaf_skip.get_mut(&u) {
                                                    skip.retain(|w| *w != v);
                                                }
                                            }
                                        }
                                    }
                                    quote!(#reserve #windows for #i in #iter { #b })
                                }
                            }
                        } else if slots.is_empty() {
                            quote!(#reserve #windows for #i in #iter { #b })
                        } else {
                            let open = slots.iter().map(|(v, k)| {
                                let tape = self.tape(*v);
                                let n = quote!(#k * ::core::iter::Iterator::size_hint(&#iter).0);
                                quote!(let #tape = #tape.slots(#n);)
                            });
                            quote!(#reserve { #(#open)* #windows for #i in #iter { #b } })
                        }
                    }
                    Some(e) => {
                        let n = format_ident!("__n{}", e.site, span = Span::mixed_site());
                        let stop = &e.stop.tokens;
                        let trips = self.ident(e.trips);
                        let save = self.save(e.site, e.trips, quote!(#trips));
                        quote! {
                            let mut #n: usize = 0;
                            for #i in #iter {
                                #b
                                #n += 1;
                                if #stop { break; }
                            }
                            #save
                            #trips = #n;
                        }
                    }
                }
            }
            Stmt::While {
                cond,
                flag,
                body,
                trips,
                site,
                stop,
            } => {
                let n = format_ident!("__n{}", site, span = Span::mixed_site());
                let c = self.ident(*flag);
                self.depth += 1;
                self.loops += 1;
                let cond = self.fwd_block(cond);
                let b = self.fwd_block(body);
                self.loops -= 1;
                self.depth -= 1;
                let stop = stop.as_ref().map(|s| {
                    let t = &s.tokens;
                    quote!(if #t { break; })
                });
                let tr = self.ident(*trips);
                let save = self.save(*site, *trips, quote!(#tr));
                quote! {
                    let mut #n: usize = 0;
                    loop {
                        #cond
                        if !#c { break; }
                        #b
                        #n += 1;
                        #stop
                    }
                    #save
                    #tr = #n;
                }
            }
            Stmt::Plain(c) => c.tokens.clone(),
        }
    }

    /// Inner loops of the fused loop with body `body` whose reverse runs in the same pass as
    /// their forward, each iteration's reverse right after its forward (the pairwise terms of
    /// `for i { for j in i + 1..n { e += φ(x[i], x[j]) } }`): the forward values are then still
    /// in registers, where otherwise the reverse loop computes them all again. Such a loop's
    /// reverse runs ascending ([`Emitter::runs_forward`]: it restores nothing and pops nothing),
    /// its body holds only assignments of variables (no memory written, no nested region), it
    /// records nothing, and nothing after it in the fused body touches an active variable it
    /// touches, apart from slice parameters (whose shadows are only added to): the reverse of
    /// what follows it, which runs between the two in the sweep order, changes none of the
    /// adjoints it reads or writes.
    fn merged_loops(&mut self, body: &Block) -> Vec<SiteId> {
        let mut out = Vec::new();
        for (p, s) in body.stmts.iter().enumerate() {
            let Stmt::For {
                id,
                range,
                body: inner,
                exit: None,
                ..
            } = s
            else {
                continue;
            };
            let plain = inner.stmts.iter().all(|t| match t {
                Stmt::Assign {
                    place: Place::Var(_),
                    temps,
                    ..
                } => !temps.iter().any(|n| matches!(n.rhs, Rhs::Call { .. })),
                Stmt::Set { .. } => true,
                _ => false,
            });
            if !range.adapters.is_empty()
                || !plain
                || !self.facts.relevant(self.f, s)
                || !self.slot_tapes(s).is_empty()
            {
                continue;
            }
            // Merged, its assignments keep nothing for the reverse: then it must run ascending.
            let sites: Vec<SiteId> = inner
                .stmts
                .iter()
                .filter_map(|t| match t {
                    Stmt::Assign { site, .. } => Some(*site),
                    _ => None,
                })
                .collect();
            self.no_saves.extend(sites.iter().copied());
            if !self.runs_forward(s) {
                for site in &sites {
                    self.no_saves.remove(site);
                }
                continue;
            }
            let touched = |stmts: &[Stmt]| {
                let mut reads = Vec::new();
                let mut writes = std::collections::BTreeSet::new();
                for t in stmts {
                    crate::analyse::deep_reads(t, &mut reads);
                    crate::analyse::writes(t, &mut writes);
                }
                writes.extend(reads);
                writes.retain(|v| self.facts.active[*v] && self.f.vars[*v].sort != Sort::Slice);
                writes
            };
            let mine = touched(std::slice::from_ref(s));
            let after = touched(&body.stmts[p + 1..]);
            // Shared sums are fine where what follows only adds to them (`e += ..`): the
            // reverse of an increment passes the sum's adjoint on unchanged.
            let only_added = |v: VarId| {
                let mut ok = self.f.vars[v].sort == Sort::Float;
                for t in &body.stmts[p + 1..] {
                    t.walk(&mut |t| {
                        let reads = crate::analyse::shallow_reads(t);
                        let n = reads.iter().filter(|r| **r == v).count();
                        match t {
                            Stmt::Assign {
                                place: Place::Var(w),
                                temps,
                                value,
                                ..
                            } if *w == v => {
                                ok &= n == 1 && crate::adjoint::var_increment(temps, value, v)
                            }
                            _ => {
                                let mut written = std::collections::BTreeSet::new();
                                if !matches!(
                                    t,
                                    Stmt::For { .. } | Stmt::If { .. } | Stmt::While { .. }
                                ) {
                                    crate::analyse::writes(t, &mut written);
                                }
                                ok &= n == 0 && !written.contains(&v);
                            }
                        }
                    });
                }
                ok
            };
            // A shared variable must be one of the loop's sums, which it only adds to: its
            // reverse reads that adjoint and writes none of it (an inner loop reading `r`,
            // followed by `r += x`, would add to `r̄` before the reverse of `r += x` passes `r̄`
            // on to `x̄`: found by the random programs, seed 263).
            let only_summed = |v: VarId| {
                let mut ok = true;
                s.walk(&mut |t| {
                    let n = crate::analyse::shallow_reads(t)
                        .iter()
                        .filter(|r| **r == v)
                        .count();
                    ok &= match t {
                        Stmt::Assign {
                            place: Place::Var(w),
                            temps,
                            value,
                            ..
                        } if *w == v => n == 1 && crate::adjoint::var_increment(temps, value, v),
                        _ => n == 0,
                    };
                });
                ok
            };
            if !mine.intersection(&after).all(|v| only_summed(*v)) {
                for site in &sites {
                    self.no_saves.remove(site);
                }
                continue;
            }
            let shared: Vec<VarId> = mine
                .intersection(&after)
                .copied()
                .filter(|v| !only_added(*v))
                .collect();
            let seeds: Option<Vec<(VarId, Vec<SiteId>)>> = shared
                .iter()
                .map(|v| self.linear_uses(body, p, *v).map(|uses| (*v, uses)))
                .collect();
            if let Some(seeds) = seeds {
                for (v, uses) in &seeds {
                    for &u in uses {
                        self.leaf_skip.entry(u).or_default().push(*v);
                    }
                }
                if !seeds.is_empty() {
                    self.seeds.insert(*id, seeds);
                }
                out.push(*id);
            } else {
                for site in &sites {
                    self.no_saves.remove(site);
                }
            }
        }
        out
    }

    /// The statements after inner loop `body.stmts[p]` that touch `v`, a sum of that loop, if
    /// each uses it linearly and its adjoint's part for `v` can run before the loop (the
    /// quadratic form's `for j { ax += a[i n + j] x[j] } f += 0.5 x[i] ax`: `ax`'s adjoint is
    /// `0.5 x[i] f̄` whatever `ax` is). Each use is a top-level increment `w = w + e` of an
    /// accumulator of the fused loop (its adjoint is the same all through the iteration), with
    /// no call, saving nothing, `v` once in `e` and only through sums, differences, negations,
    /// products with values that do not depend on `v` and numerators; what the partial in `v`
    /// reads (those factors and denominators) is not written from the loop to the use. `v`
    /// itself is a float defined before the loop in the body and not written after it. By
    /// site.
    fn linear_uses(&self, body: &Block, p: usize, v: VarId) -> Option<Vec<SiteId>> {
        if self.f.vars[v].sort != Sort::Float {
            return None;
        }
        // The accumulators of the fused loop whose body this is.
        let accs: Vec<VarId> = self
            .f
            .body
            .stmts
            .iter()
            .find_map(|s| match s {
                Stmt::For { id, body: b, .. } if std::ptr::eq(b, body) => self.facts.fused.get(id),
                _ => None,
            })
            .map(|plan| plan.accs.iter().map(|(a, _)| *a).collect())
            .unwrap_or_default();
        let defined_before = body.stmts[..p].iter().any(|t| {
            let mut w = std::collections::BTreeSet::new();
            crate::analyse::writes(t, &mut w);
            w.contains(&v)
        });
        if !defined_before {
            return None;
        }
        let mut uses = Vec::new();
        for (q, t) in body.stmts.iter().enumerate().skip(p + 1) {
            let mut reads = Vec::new();
            crate::analyse::deep_reads(t, &mut reads);
            let mut written = std::collections::BTreeSet::new();
            crate::analyse::writes(t, &mut written);
            if written.contains(&v) {
                return None;
            }
            if !reads.contains(&v) {
                continue;
            }
            let Stmt::Assign {
                site,
                place: Place::Var(w),
                temps,
                value,
                ..
            } = t
            else {
                return None;
            };
            if *w == v
                || !accs.contains(w)
                || !crate::adjoint::var_increment(temps, value, *w)
                || self.facts.save[*site] != Save::No
                || temps.iter().any(|n| matches!(n.rhs, Rhs::Call { .. }))
            {
                return None;
            }
            // What the partial in `v` reads holds the same value before the loop.
            let coefficient = linear_in(temps, value, v)?;
            let mut between = std::collections::BTreeSet::new();
            for u in &body.stmts[p..q] {
                crate::analyse::writes(u, &mut between);
            }
            if coefficient.iter().any(|r| between.contains(r)) {
                return None;
            }
            uses.push(*site);
        }
        (!uses.is_empty()).then_some(uses)
    }

    /// The top-level statement of a fused loop's body at `site`.
    pub(crate) fn fused_stmt(&self, site: SiteId) -> Option<&'a Stmt> {
        let f: &'a Func = self.f;
        f.body.stmts.iter().find_map(|s| match s {
            Stmt::For { id, body, .. } if self.facts.fused.contains_key(id) => body
                .stmts
                .iter()
                .find(|t| matches!(t, Stmt::Assign { site: u, .. } if *u == site)),
            _ => None,
        })
    }

    /// A fused loop (`fuse.rs`): each iteration runs its forward, then its reverse with the
    /// accumulators' adjoints set to their values at the end of the loop. The adjoints it
    /// touches are declared before it; the accumulators' are zeroed after it, so that the
    /// reverse sweep of the statements after the loop adds them again as usual.
    fn fused_loop(&mut self, s: &Stmt) -> TokenStream {
        let Stmt::For {
            id,
            index,
            range,
            body,
            ..
        } = s
        else {
            return quote!();
        };
        let index = *index;
        let plan = &self.facts.fused[id];
        let mut decls = Vec::new();
        let own = crate::fuse::own_buffers(self.f, body);
        for &v in &plan.touched {
            if !self.early[v] {
                self.early[v] = true;
                decls.push(if own.contains(&v) && self.f.vars[v].array_len.is_none() {
                    // Sized by the declaration, in each iteration (`Buffer::fit`).
                    let (bar, t) = (self.bar(v), &self.t);
                    quote!(let mut #bar = ::ad::__private::Buffer::filled(0.0 as #t, 0);)
                } else {
                    self.adjoint_decl(v)
                });
            }
        }
        let mut init = Vec::new();
        let mut reset = Vec::new();
        for (v, e) in &plan.accs {
            let bar = self.bar(*v);
            init.push(quote!(#bar = #e;));
            reset.push(quote!(#bar = 0.0;));
        }
        // A deferred seed: the loop adds to private adjoints of the scalars it reads, named in
        // place of theirs while its code is emitted.
        let mut swapped = Vec::new();
        if let Some(d) = &plan.deferred {
            let t = &self.t;
            for &v in &d.scalars {
                // (Per loop: two loops deferring the same sum may read the same scalar.)
                let private =
                    format_ident!("{}_unscaled{}", self.bar(v), id, span = Span::mixed_site());
                decls.push(quote!(let mut #private: #t = 0.0;));
                swapped.push((v, std::mem::replace(&mut self.names[v].1, private)));
            }
        }
        let i = self.ident(index);
        let iter = self.range_iter(range);
        let merged = self.merged_loops(body);
        self.merged.extend(merged);
        self.depth += 1;
        self.loops += 1;
        self.in_fused = true;
        let fwd = self.fwd_block(body);
        self.in_fused = false;
        self.loops -= 1;
        // The body's top-level temporaries are in scope: its reverse reads them as the
        // function's top level does.
        let depth = std::mem::replace(&mut self.depth, 0);
        let mut written = std::collections::BTreeSet::new();
        crate::analyse::writes(s, &mut written);
        let read_only = plan
            .touched
            .iter()
            .copied()
            .filter(|v| {
                matches!(self.f.vars[*v].sort, Sort::Slice | Sort::Buffer) && !written.contains(v)
            })
            .collect();
        // Only a plain ascending range visits `i + 1` right after `i`.
        if range.adapters.is_empty() {
            self.shift = Some(std::cell::RefCell::new(Shift {
                index,
                read_only,
                used: Default::default(),
                assigned: Default::default(),
                depth: 0,
            }));
        }
        // Variables each iteration defines before touching them have a zero adjoint when the
        // iteration's reverse starts (the previous one's reverse consumed it at that definition).
        let accs: Vec<VarId> = plan.accs.iter().map(|(v, _)| *v).collect();
        let mut zero = self.defined_first(body);
        zero.retain(|v| !accs.contains(v));
        *self.zero.borrow_mut() = zero;
        self.direct.borrow_mut().clear();
        // (The reverse of merged loops ran in the forward sweep.)
        let merged_direct = std::mem::take(&mut self.merged_direct);
        self.direct.borrow_mut().extend(merged_direct);
        let rev = self.rev_block(body, false);
        self.zero.borrow_mut().clear();
        self.depth = depth - 1;
        let shift = self
            .shift
            .take()
            .map(|c| c.into_inner())
            .unwrap_or_default();
        let hi = self.ident(range.end);
        // A slice's shadow that only this loop's registers write, and no earlier fused loop
        // has: each element is stored once, over the zero it was filled with.
        let direct = std::mem::take(&mut *self.direct.borrow_mut());
        let first: std::collections::BTreeSet<VarId> = shift
            .used
            .keys()
            .copied()
            .filter(|b| {
                self.f.vars[*b].sort == Sort::Slice
                    && !direct.contains(b)
                    && !self.shadow_written.contains(b)
            })
            .collect();
        // It stores elements `start + lo ..= end - 1 + hi` (offsets `lo ..= hi`), also when
        // the loop does not run (then `end + lo ..`): all of them for `-lo..x.len() - hi`.
        for b in &first {
            let (lo, hi) = shift.used[b];
            if self.top_level_code(range.start).and_then(|c| literal(&c)) == Some(-lo)
                && self.is_len_minus(range.end, *b, hi)
            {
                self.covered.insert(*b);
            }
        }
        self.shadow_written.extend(shift.used.keys().chain(&direct));
        let [carries, accs, stores, flush] = self.carry_code(&shift, &i, &hi, false, &first);
        if let Some(d) = &plan.deferred {
            // At the loop's place in the reverse sweep, the accumulator's adjoint is known.
            let g = fixed("__g");
            let e = fixed("__e");
            let acc = self.bar(d.acc);
            let scale: Vec<TokenStream> = d
                .scaled
                .iter()
                .map(|&b| {
                    let bar = self.bar(b);
                    quote!(for #e in #bar.iter_mut() { *#e *= #g; })
                })
                .collect();
            let mut adds = Vec::new();
            for (v, real) in swapped {
                let private = std::mem::replace(&mut self.names[v].1, real);
                let bar = self.bar(v);
                adds.push(quote!(#bar += #g * #private;));
            }
            self.deferred_rev
                .insert(*id, quote!({ let #g = #acc; #(#scale)* #(#adds)* }));
        }
        let precheck = if range.adapters.is_empty() {
            self.bounds_precheck(body, index, range, false)
        } else {
            quote!()
        };
        let (windows, b) = self.windows(
            body,
            index,
            range,
            quote!(#fwd #(#accs)* #rev #(#stores)*),
            true,
        );
        quote! {
            #(#decls)*
            #(#init)*
            #precheck
            #windows
            #(#carries)*
            for #i in #iter { #b }
            #(#flush)*
            #(#reset)*
        }
    }

    /// The code that sets `v`, if `v` is set once, at the function's top level.
    fn top_level_code(&self, v: VarId) -> Option<TokenStream> {
        if self.decl[v] != Decl::InPlace {
            return None;
        }
        self.f.body.stmts.iter().find_map(|s| match s {
            Stmt::Set { dst, code, .. } if *dst == v => Some(code.tokens.clone()),
            _ => None,
        })
    }

    /// Whether `v`, set once at the top level, is `x.len() - k` (`k` may be 0), with `x.len()`
    /// written out or read from another such variable.
    fn is_len_minus(&self, v: VarId, x: VarId, k: isize) -> bool {
        let Some(code) = self.top_level_code(v) else {
            return false;
        };
        let toks: Vec<proc_macro2::TokenTree> = code.into_iter().collect();
        let (len, rest) = match toks.as_slice() {
            [a, dot, m, args, rest @ ..]
                if matches!(dot, proc_macro2::TokenTree::Punct(p) if p.as_char() == '.')
                    && m.to_string() == "len"
                    && matches!(args, proc_macro2::TokenTree::Group(g) if g.stream().is_empty()) =>
            {
                (self.ident(x) == a.to_string(), rest)
            }
            [a, rest @ ..] => {
                let var = self.f.vars.iter().enumerate().find(|(id, var)| {
                    var.role != Role::Temp && var_ident(var, *id) == a.to_string()
                });
                (
                    var.is_some_and(|(id, _)| id != v && self.is_len_minus(id, x, 0)),
                    rest,
                )
            }
            [] => return false,
        };
        len && match rest {
            [] => k == 0,
            [minus, lit] => {
                matches!(minus, proc_macro2::TokenTree::Punct(p) if p.as_char() == '-')
                    && literal_usize(lit) == Some(k)
            }
            _ => false,
        }
    }

    /// The registers of a [`Shift`]: declarations before the loop (`carries`), per iteration
    /// (`accs`), the end of each iteration (`stores`) and after the loop (`flush`). Ascending
    /// (a fused loop), element `i + lo` is final after iteration `i` and carry j holds element
    /// `i + lo + 1 + j`; `edge` is the range's end. Descending (a loop replayed backwards),
    /// element `i + hi` is final and carry j holds element `i + hi - 1 - j`; `edge` is the
    /// range's start. `get_mut` and checked arithmetic: an iteration may not have read an element
    /// (a load under a branch), and then nothing is added (a loop that never ran carries zeros).
    pub fn carry_code(
        &self,
        shift: &Shift,
        i: &Ident,
        edge: &Ident,
        descending: bool,
        assign: &std::collections::BTreeSet<VarId>,
    ) -> [Vec<TokenStream>; 4] {
        let t = &self.t;
        let (mut carries, mut accs, mut stores, mut flush) = (vec![], vec![], vec![], vec![]);
        // `bar[base + off]` as an `Option<&mut _>`.
        let elem = |bar: &Ident, base: &Ident, off: isize| {
            let m = off.unsigned_abs();
            if off < 0 {
                quote!(#base.checked_sub(#m).and_then(|__j| #bar.get_mut(__j)))
            } else if off == 0 {
                quote!(#bar.get_mut(#base))
            } else {
                quote!(#base.checked_add(#m).and_then(|__j| #bar.get_mut(__j)))
            }
        };
        for (&b, &(lo, hi_k)) in &shift.used {
            let bar = self.bar(b);
            let op = if assign.contains(&b) {
                quote!(=)
            } else {
                quote!(+=)
            };
            let carry = |j: isize| {
                format_ident!(
                    "__carry{}_{}x{}",
                    shift.index,
                    b,
                    j.unsigned_abs(),
                    span = Span::mixed_site()
                )
            };
            for k in lo..=hi_k {
                let a = Emitter::acc_ident(shift.index, b, k);
                accs.push(quote!(let mut #a: #t = 0.0;));
            }
            let n = hi_k - lo;
            // The offset finished in each iteration, and the offset carry j stands for.
            let (done, pending) = if descending {
                (hi_k, (0..n).map(|j| hi_k - 1 - j).collect::<Vec<_>>())
            } else {
                (lo, (0..n).map(|j| lo + 1 + j).collect::<Vec<_>>())
            };
            let a_done = Emitter::acc_ident(shift.index, b, done);
            let here = elem(&bar, i, done);
            let first = if n > 0 {
                let c0 = carry(0);
                quote!(#c0 + #a_done)
            } else {
                quote!(#a_done)
            };
            stores.push(quote! {
                if let ::core::option::Option::Some(__e) = #here {
                    *__e #op #first;
                }
            });
            for j in 0..n {
                let (c, a_next) = (
                    carry(j),
                    Emitter::acc_ident(shift.index, b, pending[j as usize]),
                );
                carries.push(quote!(let mut #c: #t = 0.0;));
                if j + 1 < n {
                    let c_next = carry(j + 1);
                    stores.push(quote!(#c = #c_next + #a_next;));
                } else {
                    stores.push(quote!(#c = #a_next;));
                }
                // After the last iteration (`i = end - 1` ascending, `i = start` descending),
                // carry j holds element `end + lo + j`, or `start + hi - 1 - j`.
                let at = if descending {
                    elem(&bar, edge, hi_k - 1 - j)
                } else {
                    elem(&bar, edge, lo + j)
                };
                flush.push(quote! {
                    if let ::core::option::Option::Some(__e) = #at {
                        *__e #op #c;
                    }
                });
            }
        }
        [carries, accs, stores, flush]
    }

    /// Where a load's adjoint goes inside a fused loop: the accumulator of `buf[i ± k]`, if
    /// `buf` is read-only memory and the index is the loop's `i` plus or minus a small constant.
    pub fn shifted(&self, buf: VarId, index: &Code) -> Option<(VarId, isize)> {
        let cell = self.shift.as_ref()?;
        let mut shift = cell.borrow_mut();
        if !shift.read_only.contains(&buf) {
            return None;
        }
        let k = self.offset(index, shift.index)?;
        let (lo, hi) = shift.used.get(&buf).copied().unwrap_or((k, k));
        let (lo, hi) = (lo.min(k), hi.max(k));
        if hi - lo > MAX_SHIFT {
            return None;
        }
        shift.used.insert(buf, (lo, hi));
        Some((buf, k))
    }

    /// `k` if `index` is `i + k`, `k + i`, `i - k` or `i`, for `i` the variable `of`.
    pub fn offset(&self, index: &Code, of: VarId) -> Option<isize> {
        if index.reads != [of] {
            return None;
        }
        let name = self.ident(of).to_string();
        let toks: Vec<proc_macro2::TokenTree> = index.tokens.clone().into_iter().collect();
        let is_i = |t: &proc_macro2::TokenTree| t.to_string() == name;
        let lit = literal_usize;
        let punct = |t: &proc_macro2::TokenTree, c: char| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == c);
        match toks.as_slice() {
            [a] if is_i(a) => Some(0),
            [a, p, b] if is_i(a) && punct(p, '+') => lit(b),
            [a, p, b] if is_i(b) && punct(p, '+') => lit(a),
            [a, p, b] if is_i(a) && punct(p, '-') => lit(b).map(|k| -k),
            _ => None,
        }
    }

    /// Before a loop over `start..end` (ascending, one step), for each buffer its body loads
    /// at `i ± k` on every iteration (top-level statements): the bounds check of the last
    /// iteration's element with the largest offset. The loads inside then provably stay in
    /// bounds and the compiler drops their checks. A load that is out of bounds panics here
    /// instead of in the last iteration, as nothing the function returns is observable before.
    /// `fixed`: only memory in [`Emitter::fixed_len`] (a loop that is not fused may declare
    /// buffers).
    fn bounds_precheck(
        &self,
        body: &Block,
        index: VarId,
        range: &LoopRange,
        fixed: bool,
    ) -> TokenStream {
        let mut max: std::collections::BTreeMap<VarId, isize> = Default::default();
        let declared = declared_in_block(body);
        for s in &body.stmts {
            if let Stmt::Assign { temps, .. } = s {
                for n in temps {
                    if let Rhs::Load { buf, index: at } = &n.rhs {
                        if fixed && !self.fixed_len.contains(buf) || declared.contains(buf) {
                            continue;
                        }
                        if let Some(k) = self.offset(at, index) {
                            let m = max.entry(*buf).or_insert(k);
                            *m = (*m).max(k);
                        }
                    }
                }
            }
        }
        if max.is_empty() {
            return quote!();
        }
        let (lo, hi) = (self.ident(range.start), self.ident(range.end));
        let checks = max.iter().map(|(b, k)| {
            let b = self.ident(*b);
            let m = k.unsigned_abs();
            let last = if *k >= 0 {
                quote!(#hi - 1 + #m)
            } else {
                quote!(#hi - 1 - #m)
            };
            quote!(let _ = &#b[#last];)
        });
        quote!(if #lo < #hi { #(#checks)* })
    }

    /// The register of [`Leaf::Acc`] of the loop over `index` (named after both: a loop nested
    /// in another may carry the same buffer).
    pub fn acc_ident(index: VarId, buf: VarId, k: isize) -> Ident {
        let sign = if k < 0 { "m" } else { "x" };
        format_ident!(
            "__acc{}_{}{}{}",
            index,
            buf,
            sign,
            k.unsigned_abs(),
            span = Span::mixed_site()
        )
    }

    /// Active float variables that a loop body's own statements define before anything in the
    /// body touches them: the reverse of each iteration ends with their adjoints zero.
    pub fn defined_first(&self, body: &Block) -> std::collections::BTreeSet<VarId> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = std::collections::BTreeSet::new();
        for t in &body.stmts {
            if let Stmt::Assign {
                place: Place::Var(v),
                ..
            } = t
            {
                if !seen.contains(v)
                    && !crate::analyse::stmt_reads(t).contains(v)
                    && self.facts.active[*v]
                {
                    out.insert(*v);
                }
            }
            crate::analyse::writes(t, &mut seen);
            let mut r = Vec::new();
            crate::analyse::deep_reads(t, &mut r);
            seen.extend(r);
        }
        out
    }

    /// Adjoints known to be zero when each reverse iteration of loop `l` (not fused) starts:
    /// variables its body defines first (`defined_first`) and that nothing outside the loop
    /// reads or writes. Before the loop's reverse first runs, nothing has touched their
    /// adjoints; each iteration's reverse ends with them zero; so each one starts with them
    /// zero, whether the loop ran before or not.
    pub fn confined_zero(&self, l: &Stmt) -> std::collections::BTreeSet<VarId> {
        let Stmt::For { body, .. } = l else {
            return Default::default();
        };
        let mut zero = self.defined_first(body);
        if zero.is_empty() {
            return zero;
        }
        // Confined: every statement touching it is inside the loop.
        let (mut inside, mut all) = (Default::default(), Default::default());
        l.walk(&mut |t| crate::analyse::count_touches(t, &mut inside));
        self.f
            .body
            .walk(&mut |t| crate::analyse::count_touches(t, &mut all));
        zero.retain(|v| *v != 0 && inside.get(v) == all.get(v));
        zero
    }

    /// The tapes of loop `s` written into slots (`Tape::slots`) rather than pushed, with the
    /// number of values each iteration records: in a loop with a plain ascending range, the
    /// tapes that only the body's own statements save on. Each of those runs once per
    /// iteration, so iteration `i - lo` writes slots `(i - lo) * k ..`; the reverse sweep reads
    /// them back in place. A loop nested in another reuses, at each entry, the room the
    /// previous one freed. At the top level too the slots beat pushes: a push stores the
    /// vector's length back to memory on every iteration (its slow path takes the vector by
    /// reference), which made the logistic map's taped recurrence 1.06 × the hand-written
    /// adjoint with pushes and 0.70 × with slots, and log-sum-exp's branch flags 1.71 → 1.33 ×.
    /// Registers the slot of each such save in `slot_sites`.
    pub fn slot_tapes(&self, s: &Stmt) -> Vec<(VarId, usize)> {
        let Stmt::For {
            index,
            range,
            body,
            exit: None,
            ..
        } = s
        else {
            return Vec::new();
        };
        if !range.adapters.is_empty() {
            return Vec::new();
        }
        let taped = |site: SiteId| self.facts.save[site] == Save::Tape;
        let mut top: std::collections::BTreeMap<VarId, Vec<SiteId>> = Default::default();
        let mut deeper = std::collections::BTreeSet::new();
        for st in &body.stmts {
            match saving_site(st) {
                Some((site, v)) if taped(site) => top.entry(v).or_default().push(site),
                Some(_) => {}
                None => st.walk(&mut |t| {
                    let saved = match t {
                        Stmt::For { exit: Some(e), .. } => Some((e.site, e.trips)),
                        Stmt::While { site, trips, .. } => Some((*site, *trips)),
                        _ => saving_site(t),
                    };
                    if let Some((_, v)) = saved.filter(|(site, _)| taped(*site)) {
                        deeper.insert(v);
                    }
                }),
            }
        }
        let i = self.ident(*index);
        let lo = self.ident(range.start);
        let mut out = Vec::new();
        let mut slot_sites = self.slot_sites.borrow_mut();
        for (v, sites) in top {
            if deeper.contains(&v) {
                continue;
            }
            let k = sites.len();
            for (c, site) in sites.into_iter().enumerate() {
                let slot = if k == 1 {
                    quote!((#i - #lo) as usize)
                } else {
                    quote!(((#i - #lo) as usize) * #k + #c)
                };
                slot_sites.insert(site, slot);
            }
            out.push((v, k));
        }
        out
    }

    /// For the sites of `body`'s top level whose save is moved to the end of the iteration
    /// ([`crate::analyse::Facts::end_save`]), in the body's order: the save (forward) or the
    /// load (reverse) that `each` makes.
    pub fn end_saves(
        &self,
        body: &Block,
        each: impl Fn(&Self, SiteId, VarId) -> TokenStream,
    ) -> TokenStream {
        body.stmts
            .iter()
            .filter_map(saving_site)
            .filter(|(site, _)| self.facts.end_save.contains(site))
            .map(|(site, v)| each(self, site, v))
            .collect()
    }

    /// The load, at the start of a reverse iteration, of what an end save stored.
    pub fn end_load(&self, site: SiteId, v: VarId) -> TokenStream {
        let id = self.ident(v);
        self.restore_now(site, v, quote!(#id))
    }

    /// Tapes pushed once per iteration by the loop body's own statements are sized once, before
    /// the loop: a recurrence of n steps allocates exactly n values.
    fn reserve(&self, body: &Block, iter: &TokenStream, slots: &[(VarId, usize)]) -> TokenStream {
        if !self.record {
            return quote!();
        }
        let mut per_tape = std::collections::BTreeMap::new();
        for s in &body.stmts {
            let Some((site, v)) = saving_site(s) else {
                continue;
            };
            if self.facts.save[site] == Save::Tape && !slots.iter().any(|(w, _)| *w == v) {
                *per_tape.entry(v).or_insert(0usize) += 1;
            }
        }
        let lines = per_tape.into_iter().map(|(v, k)| {
            let tape = self.tape(v);
            let n = quote!(#k * ::core::iter::Iterator::size_hint(&#iter).0);
            // The outermost loop sizes its tapes exactly; inner loops, which run many times,
            // grow them geometrically.
            if self.loops == 0 {
                quote!(#tape.reserve_exact(#n);)
            } else {
                quote!(#tape.reserve(#n);)
            }
        });
        quote!(#(#lines)*)
    }

    /// Whether some statement keeps results on `__temps`: below a fused loop's top level, or
    /// in a loop that replays.
    fn uses_temps_tape(&self) -> bool {
        let mut used = false;
        for s in &self.f.body.stmts {
            match s {
                Stmt::For { id, body, .. } if self.facts.fused.contains_key(id) => {
                    for t in body
                        .stmts
                        .iter()
                        .filter(|t| !matches!(t, Stmt::Assign { .. }))
                    {
                        t.walk(&mut |u| used = used || self.pushes_temps(u));
                    }
                }
                Stmt::Assign { .. } | Stmt::Set { .. } | Stmt::BufDecl { .. } | Stmt::Plain(_) => {}
                _ => s.walk(&mut |u| used = used || self.pushes_temps(u)),
            }
        }
        used
    }

    /// `(lo..hi)` followed by the loop's adapters.
    pub fn range_iter(&self, r: &LoopRange) -> TokenStream {
        let lo = self.ident(r.start);
        let hi = self.ident(r.end);
        let mut it = quote!((#lo..#hi));
        for a in &r.adapters {
            it = match a {
                Adapter::Rev => quote!(#it.rev()),
                Adapter::StepBy(s) => {
                    let s = self.ident(*s);
                    quote!(#it.step_by(#s))
                }
            };
        }
        it
    }

    // ----- declarations -----

    /// Declarations before the forward sweep: hoisted variables, tapes and slots.
    pub fn hoisted(&self) -> TokenStream {
        let t = &self.t;
        let mut out = Vec::new();
        let mut floats = Vec::new();
        for (v, var) in self.f.vars.iter().enumerate() {
            if self.decl[v] == Decl::Hoisted {
                let id = self.ident(v);
                out.push(match var.sort {
                    Sort::Float => {
                        floats.push(id);
                        continue;
                    }
                    Sort::Buffer => match &var.array_len {
                        Some(len) => quote!(let mut #id = [0.0 as #t; #len];),
                        None => quote!(let mut #id: ::std::vec::Vec<#t> = ::std::vec::Vec::new();),
                    },
                    _ => quote!(let mut #id = ::core::default::Default::default();),
                });
            }
        }
        // Tapes and slots, one per saving site.
        let mut tapes = std::collections::BTreeSet::new();
        let mut decl_tapes = std::collections::BTreeSet::new();
        self.f.body.walk(&mut |s| {
            // The locals of kept partials (`kept_partials`).
            if let Stmt::Assign { site, temps, .. } = s {
                for (n, kept) in temps.iter().zip(self.saved_temps(s)) {
                    if kept && self.kept_partials(*site, n) {
                        floats.extend(Self::kept_names(n, 1));
                    }
                }
            }
            let (site, v, elem) = match s {
                Stmt::Assign {
                    site,
                    place: Place::Var(v),
                    ..
                } => (*site, *v, false),
                Stmt::Assign {
                    site,
                    place: Place::Elem { buf, .. },
                    ..
                } => (*site, *buf, true),
                Stmt::Set { site, dst, .. } => (*site, *dst, false),
                Stmt::BufDecl { site, buf, .. } => {
                    if self.facts.save[*site] != Save::No {
                        decl_tapes.insert(*buf);
                    }
                    return;
                }
                Stmt::For { exit: Some(e), .. } => (e.site, e.trips, false),
                Stmt::While { site, trips, .. } => (*site, *trips, false),
                _ => return,
            };
            match self.facts.save[site] {
                Save::No => {}
                Save::Tape => {
                    tapes.insert(v);
                }
                Save::Slot => {
                    let s = self.slot(v, site);
                    if elem || self.f.vars[v].sort == Sort::Float {
                        floats.push(s);
                    } else {
                        out.push(quote!(let mut #s = ::core::default::Default::default();));
                    }
                }
            }
        });
        for v in tapes {
            let tape = self.tape(v);
            out.push(quote!(let mut #tape = ::ad::__private::Tape::new();));
        }
        if self.uses_temps_tape() {
            let tape = fixed("__temps");
            out.push(
                quote!(let mut #tape: ::ad::__private::Tape<#t> = ::ad::__private::Tape::new();),
            );
        }
        for v in decl_tapes {
            let tape = self.decl_tape(v);
            out.push(quote!(let mut #tape = ::ad::__private::Tape::new();));
        }
        out.push(self.zeros(floats));
        quote!(#(#out)*)
    }

    /// `let mut` for float variables, all zero: array patterns of up to 64 names. Each `let`
    /// opens a scope nested in the previous one's, and LLVM's debug info recurses on that
    /// nesting: a few thousand single `let`s crash a debug build.
    pub fn zeros(&self, ids: Vec<Ident>) -> TokenStream {
        let t = &self.t;
        let mut out = TokenStream::new();
        for chunk in ids.chunks(64) {
            if let [id] = chunk {
                out.extend(quote!(let mut #id: #t = 0.0;));
            } else {
                let n = chunk.len();
                out.extend(quote!(let [#(mut #chunk),*]: [#t; #n] = [0.0; #n];));
            }
        }
        out
    }
}

/// The name of the function that calls from other `#[gradient]` functions use: the gradient
/// with respect to every float parameter, whatever `wrt(...)` says. When a callee is not
/// `#[gradient]`, rustc's "cannot find function" error shows this name, which says the fix.
pub fn companion_name(f: &syn::Ident) -> Ident {
    format_ident!("{}__mark_{}_with_gradient", f, f, span = f.span())
}

/// Parameters of a gradient function: each of `f`'s, each active slice followed by its shadow.
fn signature(e: &Emitter, f: &Func) -> (Vec<TokenStream>, Vec<TokenStream>, Vec<Ident>) {
    let mut params = Vec::new();
    let mut checks = Vec::new();
    let mut grads = Vec::new();
    for p in &f.params {
        let id = e.ident(p.var);
        let ty = &p.ty;
        let m = if p.mutable { quote!(mut) } else { quote!() };
        params.push(quote!(#m #id: #ty));
        if p.active {
            let bar = e.bar(p.var);
            match &p.shadow_ty {
                Some(sty) => {
                    params.push(quote!(#bar: #sty));
                    let msg = format!(
                        "ad: the shadow of `{}` has length {{}} but `{}` has length {{}}",
                        f.vars[p.var].name, f.vars[p.var].name
                    );
                    let fill = if e.covered.contains(&p.var) {
                        quote!()
                    } else {
                        quote!(#bar.fill(0.0);)
                    };
                    checks.push(quote! {
                        ::core::assert!(#bar.len() == #id.len(), #msg, #bar.len(), #id.len());
                        #fill
                    });
                }
                None => grads.push(bar),
            }
        }
    }
    (params, checks, grads)
}

const ALLOWS: &str =
    "unused_mut, unused_variables, unused_assignments, unused_parens, unused_braces, \
                      unused_imports, non_snake_case, dead_code, clippy::all";

fn allows() -> TokenStream {
    let lints: TokenStream = ALLOWS.parse().expect("lint list");
    quote!(#[allow(#lints)])
}

/// The companion `name` of `f_grad` (`target`), which calls from other `#[gradient]` functions
/// use. Its signature does not depend on `wrt(...)`: every float parameter of the function's
/// float type gets a gradient slot and every float slice a shadow, as the caller expects from
/// the call's syntax alone. Parameters that `wrt(...)` leaves out get zero: derivatives flow
/// into a function only through the parameters it differentiates.
pub fn companion(
    item: &syn::ItemFn,
    f: &Func,
    facts: &Facts,
    name: &Ident,
    target: &Ident,
) -> TokenStream {
    let e = Emitter::new(f, facts);
    let t = float_path(f);
    let vis = &item.vis;
    let float = &f.float;
    let mut params = Vec::new();
    let mut args = Vec::new();
    let mut zero = Vec::new();
    let mut slots = Vec::new();
    let mut k_active = 0usize;
    let grads = fixed("__grads");
    for p in &f.params {
        let id = e.ident(p.var);
        let ty = &p.ty;
        let m = if p.mutable { quote!(mut) } else { quote!() };
        params.push(quote!(#m #id: #ty));
        args.push(quote!(#id));
        let bar = e.bar(p.var);
        match (&p.shadow_ty, float_param(p, float)) {
            (Some(sty), _) => {
                params.push(quote!(#bar: #sty));
                if p.active {
                    args.push(quote!(#bar));
                } else {
                    zero.push(quote!(#bar.fill(0.0);));
                }
            }
            (None, true) => {
                if p.active {
                    slots.push(quote!(#grads[#k_active]));
                    k_active += 1;
                } else {
                    slots.push(quote!(0.0));
                }
            }
            (None, false) => {}
        }
    }
    let k = slots.len();
    let value = fixed("__value");
    let allows = allows();
    quote! {
        #[doc(hidden)]
        #[inline(always)]
        #allows
        #vis fn #name(#(#params),*) -> (#t, [#t; #k]) {
            #(#zero)*
            let (#value, #grads) = #target(#(#args),*);
            (#value, [#(#slots),*])
        }
    }
}

/// The value of an integer literal token (`1`, `1usize`, `1_000`).
pub(crate) fn literal_usize(t: &proc_macro2::TokenTree) -> Option<isize> {
    match t {
        proc_macro2::TokenTree::Literal(l) => l
            .to_string()
            .trim_end_matches("usize")
            .replace('_', "")
            .parse()
            .ok(),
        _ => None,
    }
}

/// The value of code that is one integer literal.
fn literal(code: &TokenStream) -> Option<isize> {
    let toks: Vec<proc_macro2::TokenTree> = code.clone().into_iter().collect();
    match toks.as_slice() {
        [t] => literal_usize(t),
        _ => None,
    }
}

/// The function's float type, spelled so that no user item can shadow it.
fn float_path(f: &Func) -> TokenStream {
    let float = &f.float;
    quote!(::core::primitive::#float)
}

/// Whether a scalar parameter is a float of the function's float type (a gradient slot of the
/// companion).
fn float_param(p: &Param, float: &Ident) -> bool {
    match &p.ty {
        syn::Type::Path(tp) => tp.path.segments.last().is_some_and(|s| &s.ident == float),
        _ => false,
    }
}

/// The whole `f_grad` item, named `name`.
pub fn emit(
    item: &syn::ItemFn,
    f: &Func,
    facts: &Facts,
    name: &Ident,
    hidden: bool,
) -> TokenStream {
    let mut e = Emitter::new(f, facts);
    // (Only `f_grad` reverses loops: the companion's emitter needs no jams.)
    e.jams = crate::jam::plan(f, facts);
    let t = float_path(f);
    let alias = e.t.clone();
    let vis = &item.vis;
    let items = &f.items;
    let hoisted = e.hoisted();
    let forward = e.fwd_block(&f.body);
    let ret = e.ident(f.ret);
    // A result that depends on no active value has a zero gradient: no reverse sweep.
    let adjoints = e.adjoint_decls();
    let reverse = if facts.active[f.ret] {
        let ret_bar = e.bar(f.ret);
        // Between the sweeps every adjoint is zero, except the result's and those fused loops
        // have added to.
        *e.zero.borrow_mut() = (0..f.vars.len())
            .filter(|&v| {
                facts.active[v]
                    && v != f.ret
                    && !e.early[v]
                    && f.vars[v].sort == Sort::Float
                    && f.vars[v].role != Role::Temp
            })
            .collect();
        let reverse = e.rev_block(&f.body, false);
        TokenStream::from_iter([quote!(#ret_bar = 1.0;), reverse])
    } else {
        quote!()
    };
    // After the sweeps: which shadows need no zeros first.
    let (params, checks, grads) = signature(&e, f);
    let k = grads.len();
    let value = fixed("__value");
    let doc = if hidden {
        quote!(#[doc(hidden)])
    } else {
        let doc = format!(
            "Value and gradient of [`{}`], from one reverse sweep (generated by `#[gradient]`).",
            item.sig.ident
        );
        quote!(#[doc = #doc])
    };
    let allows = allows();
    let rules = fixed("__r");
    let head = quote! {
        type #alias = #t;
        use ::ad::__private::rules as #rules;
        #(#items)*
        #(#checks)*
    };
    let tail = quote! {
        (#value, [#(#grads),*])
    };
    let value_let = quote!(let #value: #alias = #ret;);
    // The body is moved into its braces, not copied.
    let body = proc_macro2::Group::new(
        proc_macro2::Delimiter::Brace,
        TokenStream::from_iter([head, hoisted, forward, value_let, adjoints, reverse, tail]),
    );
    quote! {
        #doc
        #allows
        #vis fn #name(#(#params),*) -> (#t, [#t; #k]) #body
    }
}

/// The site and variable of a statement that may save the value it overwrites onto `tape(v)`.
pub fn saving_site(s: &Stmt) -> Option<(SiteId, VarId)> {
    match s {
        Stmt::Assign {
            site,
            place: Place::Var(v),
            ..
        }
        | Stmt::Assign {
            site,
            place: Place::Elem { buf: v, .. },
            ..
        }
        | Stmt::Set { site, dst: v, .. } => Some((*site, *v)),
        _ => None,
    }
}

/// Slice parameters, and local buffers every declaration of which is at the top level of the
/// body (a declaration inside a loop may change the length from one iteration to the next), or
/// that one declaration at the top level of a fused loop's body: its length then holds for the
/// rest of the iteration, forward and reverse, which is where the loops nested in that body run
/// (the fused loop itself takes no window of it, [`declared_in_block`]).
fn fixed_len(f: &Func, facts: &Facts) -> std::collections::BTreeSet<VarId> {
    let mut out: std::collections::BTreeSet<VarId> = f
        .vars
        .iter()
        .enumerate()
        .filter(|(_, v)| v.sort == Sort::Slice || v.sort == Sort::Buffer)
        .map(|(id, _)| id)
        .collect();
    for s in &f.body.stmts {
        if let Stmt::BufDecl { .. } = s {
            continue;
        }
        let own = match s {
            Stmt::For { id, body, .. } if facts.fused.contains_key(id) => {
                crate::fuse::own_buffers(f, body)
            }
            _ => Default::default(),
        };
        s.walk(&mut |t| {
            if let Stmt::BufDecl { buf, .. } = t {
                if !own.contains(buf) {
                    out.remove(buf);
                }
            }
        });
    }
    out
}

/// If the expression `value` (over `temps`) is linear in `v`, which it reads once, what its
/// partial in `v` reads: every node on the path from the value to `v` is a sum, difference or
/// negation, a product whose other factor does not depend on `v`, or a quotient with `v` in
/// the numerator only, and the partial is the product of those other factors and the
/// reciprocals of those denominators (the variables, buffers and indices they read).
fn linear_in(temps: &[Node], value: &Operand, v: VarId) -> Option<Vec<VarId>> {
    use crate::intrinsics::Op;
    let pos = |id: VarId| temps.iter().position(|n| n.id == id);
    // How many times `o` reaches `v`.
    fn count(temps: &[Node], o: &Operand, v: VarId) -> usize {
        match o.var() {
            Some(id) if id == v => 1,
            Some(id) => match temps.iter().find(|n| n.id == id).map(|n| &n.rhs) {
                Some(Rhs::Op { args, .. }) => args.iter().map(|a| count(temps, a, v)).sum(),
                Some(Rhs::Call { args, .. }) => args
                    .iter()
                    .map(|a| match a {
                        CallArg::Float(o) => count(temps, o, v),
                        _ => 0,
                    })
                    .sum(),
                _ => 0,
            },
            None => 0,
        }
    }
    // Everything `o` reads.
    fn reads(temps: &[Node], o: &Operand, out: &mut Vec<VarId>) {
        let Some(id) = o.var() else {
            return;
        };
        match temps.iter().find(|n| n.id == id).map(|n| &n.rhs) {
            Some(Rhs::Op { args, .. }) => args.iter().for_each(|a| reads(temps, a, out)),
            Some(Rhs::Load { buf, index }) => {
                out.push(*buf);
                out.extend(&index.reads);
            }
            Some(Rhs::Expr(c)) => out.extend(&c.reads),
            Some(Rhs::Call { .. }) => out.push(id),
            None => out.push(id),
        }
    }
    if count(temps, value, v) != 1 {
        return None;
    }
    let mut coefficient = Vec::new();
    let mut at = value.clone();
    loop {
        let id = at.var()?;
        if id == v {
            return Some(coefficient);
        }
        let Rhs::Op { op, args, .. } = &temps[pos(id)?].rhs else {
            return None;
        };
        let k = args.iter().position(|a| count(temps, a, v) == 1)?;
        match (op, k) {
            (Op::Add | Op::Sub | Op::Neg, _) => {}
            (Op::Mul, _) | (Op::Div, 0) => {
                for (j, a) in args.iter().enumerate() {
                    if j != k {
                        reads(temps, a, &mut coefficient);
                    }
                }
            }
            _ => return None,
        }
        at = args[k].clone();
    }
}

/// The buffers `b` declares (nested statements included).
pub fn declared_in_block(b: &Block) -> std::collections::BTreeSet<VarId> {
    let mut out = std::collections::BTreeSet::new();
    for s in &b.stmts {
        s.walk(&mut |t| {
            if let Stmt::BufDecl { buf, .. } = t {
                out.insert(*buf);
            }
        });
    }
    out
}
