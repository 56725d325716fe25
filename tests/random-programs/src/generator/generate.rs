//! Random programs: a recursive generator over [`ast`](super::ast) that keeps track of what is in
//! scope, so every program it writes compiles and every index it writes is in bounds.
//!
//! Domains are respected by construction: `ln`, `sqrt`, `powf`'s base and divisors get a
//! positive argument (`e * e + 1.0`, `e.abs() + 0.5`, `e.exp()`, ...), `asin` and `atanh` an
//! argument inside (-1, 1), `tan` an argument inside (-1.2, 1.2). What cannot be ruled out by
//! construction (overflow after a long chain, a branch on a knife's edge) is ruled out per input
//! point by the harness, which evaluates the oracle first.

use super::ast::{
    AssignOp, BinOp, Block, CmpOp, Cond, FExpr, Fn1, Fn2, Fn3, Function, IExpr, Param, Place,
    Program, Stmt, WHOLE, WHOLE_REF,
};
use super::rng::Rng;
use super::Features;

/// Generates program `index` of the campaign `seed`.
pub fn program(seed: u64, index: u64, features: &Features) -> Program {
    generate(seed, index, features).0
}

/// How many selection loops program `index` of the campaign `seed` has: those meant to be
/// rewritten by `#[gradient]`, and near misses.
pub fn selection_loops(seed: u64, index: u64, features: &Features) -> (usize, usize) {
    let g = generate(seed, index, features).1;
    (g.selections, g.near_misses)
}

/// How many row loops program `index` of the campaign `seed` has: inner loops whose accesses
/// `#[gradient]` is meant to take windows for, and near misses (see [`Gen::row_body`]).
pub fn row_loops(seed: u64, index: u64, features: &Features) -> (usize, usize) {
    let g = generate(seed, index, features).1;
    (g.row_loops, g.row_near)
}

/// How many runs of jammable loops program `index` of the campaign `seed` has: those meant to
/// be reversed as one loop by `#[gradient]`, and near misses (see [`Gen::jam_run`]).
pub fn jammed_loops(seed: u64, index: u64, features: &Features) -> (usize, usize) {
    let g = generate(seed, index, features).1;
    (g.jam_runs, g.jam_near)
}

/// How many calls of helpers program `index` of the campaign `seed` has in loops of runs of
/// jammable loops: of floats, of a slice the run only reads, and of a buffer it writes (a near
/// miss; see [`Gen::jam_call`]).
pub fn jam_calls(seed: u64, index: u64, features: &Features) -> [usize; 3] {
    generate(seed, index, features).1.jam_calls
}

fn generate(seed: u64, index: u64, features: &Features) -> (Program, Gen) {
    let mut g = Gen {
        rng: Rng::for_program(seed, index, 0),
        feat: *features,
        scopes: Vec::new(),
        callees: Vec::new(),
        slice_callees: Vec::new(),
        slice_helper: None,
        jam_call_miss: false,
        jam_calls: [0; 3],
        fresh: 0,
        loop_depth: 0,
        nesting: 0,
        returns_ok: false,
        in_if_expr: false,
        pure: false,
        fused_index: None,
        no_calls: false,
        no_if_expr: false,
        selections: 0,
        near_misses: 0,
        row_loops: 0,
        row_near: 0,
        jam_runs: 0,
        jam_near: 0,
    };
    let mut functions = Vec::new();
    let n_helpers = if features.calls {
        *g.rng.pick(&[0, 0, 1, 1, 2])
    } else {
        0
    };
    for h in 0..n_helpers {
        let f = g.function(&format!("g{h}"), false);
        g.callees.push((f.name.clone(), f.params.len()));
        functions.push(f);
    }
    // A helper taking a slice, for loops of jammed runs to call: only with both features on, and
    // from a stream of its own (and with the fresh names restored after it), so that programs
    // without jammed runs are as they were, but for the helper.
    if features.calls && g.jam_features() && features.slices {
        let main = std::mem::replace(&mut g.rng, Rng::for_program(seed, index, 2));
        let fresh = g.fresh;
        if g.rng.chance(0.6) {
            let len = *g.rng.pick(&[1, 2, 3, 3, 4]);
            g.slice_helper = Some(len);
            let f = g.function(&format!("g{n_helpers}"), false);
            g.slice_helper = None;
            let kinds = f
                .params
                .iter()
                .map(|p| matches!(p, Param::Slice(..)))
                .collect();
            g.slice_callees.push((f.name.clone(), kinds, len));
            functions.push(f);
        }
        g.rng = main;
        g.fresh = fresh;
    }
    functions.push(g.function("f", true));
    (Program { functions }, g)
}

/// A float variable in scope.
#[derive(Clone, Debug)]
struct FVar {
    name: String,
    mutable: bool,
    /// How often it has been read: unread variables are preferred, so values flow on.
    uses: u32,
    /// The loop depth at its declaration: assigning it from deeper is loop-carried state.
    loop_depth: usize,
    /// Out of reach of random reads and writes (the accumulators of a fused loop, and values
    /// private to its iterations): only the code that made it hidden uses it.
    hidden: bool,
}

/// An integer variable in scope with the range of values it takes (inclusive).
#[derive(Clone, Debug)]
struct IVar {
    name: String,
    lo: usize,
    hi: usize,
}

/// A slice parameter or a local array in scope.
#[derive(Clone, Debug)]
struct Arr {
    name: String,
    len: usize,
    mutable: bool,
    /// How often an element has been read.
    uses: u32,
    /// Out of reach of random reads and writes (see [`FVar::hidden`]).
    hidden: bool,
    /// A `Vec`: `v[v.len() - 1] = e` does not compile (`IndexMut` borrows `v` first).
    is_vec: bool,
}

#[derive(Default, Debug)]
struct Scope {
    floats: Vec<FVar>,
    ints: Vec<IVar>,
    arrs: Vec<Arr>,
}

struct Gen {
    rng: Rng,
    feat: Features,
    scopes: Vec<Scope>,
    /// Functions generated so far: name and arity (all scalar parameters).
    callees: Vec<(String, usize)>,
    /// Helpers taking a slice (called only from loops of jammed runs, [`Gen::jam_call`]): name,
    /// per parameter whether it is the slice, and the slice's length (callers pass only slices
    /// of that length: its body's random code may loop to `q.len()` over other arrays).
    slice_callees: Vec<(String, Vec<bool>, usize)>,
    /// The function being generated is a helper taking a slice `q` of this length.
    slice_helper: Option<usize>,
    /// A loop of the current run passes a buffer an earlier loop wrote to a helper (a near
    /// miss: [`Gen::jam_call`]).
    jam_call_miss: bool,
    /// Calls in loops of runs so far (see [`jam_calls`]).
    jam_calls: [usize; 3],
    fresh: usize,
    loop_depth: usize,
    /// Depth of nested blocks inside the function body.
    nesting: usize,
    /// Whether a `return` may be written at the current point.
    returns_ok: bool,
    /// Inside an `if` expression: no further `if` expressions, no loops.
    in_if_expr: bool,
    /// Inside an `if` expression within a larger expression: no assignments either. (In
    /// `t += if c { t += 1.0; t } else { .. }` an `f64` evaluates the right side first, a type
    /// with `AddAssign` the left place first: the oracle would differ from the program.)
    pure: bool,
    /// Inside the body of a fused loop (see [`Gen::fused_loop`]): its index, whose loads
    /// `a[i]`, `a[i + 1]`, `a[i + 2]` are preferred.
    fused_index: Option<String>,
    /// No calls of other generated functions (they keep a loop from being fused).
    no_calls: bool,
    /// No `if` expressions (`#[gradient]` does not fuse a loop with one).
    no_if_expr: bool,
    /// Selection loops generated so far: meant to be rewritten, and near misses.
    selections: usize,
    near_misses: usize,
    /// Row loops generated so far: meant to take windows, and near misses.
    row_loops: usize,
    row_near: usize,
    /// Runs of jammable loops generated so far: meant to be jammed, and near misses.
    jam_runs: usize,
    jam_near: usize,
}

/// Names of the accumulators of fused loops.
const ACC_NAMES: [&str; 6] = ["sum", "total", "acc", "loss", "sq", "energy"];

/// Names the macro might pick for its own locals: a user using them must not break it.
const HYGIENE_NAMES: [&str; 12] = [
    "x_bar", "f_bar", "tape", "grad", "value", "adj", "y_bar", "ret", "result", "bar", "seed",
    "out",
];

const FLOAT_NAMES: [&str; 10] = ["a", "b", "u", "v", "w", "p", "q", "r", "t", "acc"];

/// The share of entry functions built around fused loops when the feature is on.
const FUSED_SHARE: f64 = 0.4;

/// The share of entry functions built around selection loops when the feature is on.
const SELECTION_SHARE: f64 = 0.07;

/// The weight of a selection loop among the random statements (about 100 in all).
const SELECTION_WEIGHT: u32 = 1;

/// The share of selection loops that are near misses (not rewritten by `#[gradient]`).
const SELECTION_NEAR_MISS: f64 = 0.3;

/// The share of entry functions built around row loops when the feature is on.
const ROW_SHARE: f64 = 0.14;

/// The share of row loops that are near misses (no window, or not for every access).
const ROW_NEAR_MISS: f64 = 0.3;

/// The share of entry functions built around runs of jammable loops when the feature is on.
const JAM_SHARE: f64 = 0.35;

/// The weight of a run of jammable loops among the random statements (about 100 in all).
const JAM_WEIGHT: u32 = 7;

/// The share of runs of jammable loops that are near misses (not jammed as a whole).
const JAM_NEAR_MISS: f64 = 0.35;

/// Names of selected maxima and minima.
const MAX_NAMES: [&str; 5] = ["m", "mx", "peak", "top", "hi"];
const MIN_NAMES: [&str; 5] = ["m", "mn", "low", "floor_v", "lo"];

/// Literals that read well and keep values of moderate size.
const LITERALS: [f64; 14] = [
    0.5, 1.0, 2.0, 3.0, 0.25, 1.5, 0.1, 0.75, 2.5, 0.3, 4.0, 0.9, 1.25, 0.2,
];

impl Gen {
    // ---------------------------------------------------------------------------------------
    // Scopes.
    // ---------------------------------------------------------------------------------------

    fn push(&mut self) {
        self.scopes.push(Scope::default());
    }

    fn pop(&mut self) {
        self.scopes.pop();
    }

    /// A new scope holding the integer `name` (a loop index) with values in `lo..=hi`.
    fn push_with_int(&mut self, name: &str, lo: usize, hi: usize) {
        self.push();
        self.top().ints.push(IVar {
            name: name.to_string(),
            lo,
            hi,
        });
    }

    fn top(&mut self) -> &mut Scope {
        self.scopes.last_mut().expect("inside a scope")
    }

    fn declare_float(&mut self, name: &str, mutable: bool) {
        let loop_depth = self.loop_depth;
        self.top().floats.push(FVar {
            name: name.to_string(),
            mutable,
            uses: 0,
            loop_depth,
            hidden: false,
        });
    }

    /// Declares a float that random code does not see (see [`FVar::hidden`]).
    fn declare_hidden(&mut self, name: &str, mutable: bool) {
        self.declare_float(name, mutable);
        self.set_hidden(name, false, true);
    }

    /// Hides the innermost float (or array) `name` from random code, or shows it again.
    fn set_hidden(&mut self, name: &str, array: bool, hidden: bool) {
        for s in self.scopes.iter_mut().rev() {
            if array {
                if let Some(a) = s.arrs.iter_mut().rev().find(|a| a.name == name) {
                    a.hidden = hidden;
                    return;
                }
            } else if let Some(v) = s.floats.iter_mut().rev().find(|v| v.name == name) {
                v.hidden = hidden;
                return;
            }
        }
    }

    /// The visible float variables: the innermost declaration of each name, unless hidden.
    fn floats(&self) -> Vec<FVar> {
        let mut seen: Vec<FVar> = Vec::new();
        for s in self.scopes.iter().rev() {
            for v in s.floats.iter().rev() {
                if !seen.iter().any(|w| w.name == v.name) {
                    seen.push(v.clone());
                }
            }
        }
        seen.retain(|v| !v.hidden);
        seen
    }

    /// Picks a visible float variable, preferring unread ones, and counts the read.
    fn read_float(&mut self) -> Option<String> {
        let floats = self.floats();
        if floats.is_empty() {
            return None;
        }
        let weights: Vec<u32> = floats
            .iter()
            .map(|v| if v.uses == 0 { 6 } else { 1 })
            .collect();
        let name = floats[self.rng.weighted(&weights)].name.clone();
        for s in self.scopes.iter_mut().rev() {
            if let Some(v) = s.floats.iter_mut().rev().find(|v| v.name == name) {
                v.uses += 1;
                break;
            }
        }
        Some(name)
    }

    /// Reads an element of a visible array, preferring unread arrays.
    fn read_elem(&mut self) -> FExpr {
        let arrs = self.arrs();
        let weights: Vec<u32> = arrs
            .iter()
            .map(|a| if a.uses == 0 { 6 } else { 1 })
            .collect();
        let a = arrs[self.rng.weighted(&weights)].clone();
        for s in self.scopes.iter_mut().rev() {
            if let Some(b) = s.arrs.iter_mut().rev().find(|b| b.name == a.name) {
                b.uses += 1;
                break;
            }
        }
        let i = self.index(&a);
        FExpr::Index(a.name, i)
    }

    /// The value a block ends with: an expression that also reads what the block computed
    /// and nothing read yet, so that values flow to the result instead of dying.
    fn tail(&mut self) -> FExpr {
        let mut e = self.operand(3);
        for _ in 0..2 {
            let unread_float = self
                .top()
                .floats
                .iter()
                .rev()
                .find(|v| v.uses == 0 && !v.hidden)
                .map(|v| v.name.clone());
            let unread_arr = self.top().arrs.iter().any(|a| a.uses == 0 && !a.hidden);
            let extra = if let Some(v) = unread_float {
                self.read_named(&v);
                FExpr::Var(v)
            } else if unread_arr {
                let name = self
                    .top()
                    .arrs
                    .iter()
                    .find(|a| a.uses == 0 && !a.hidden)
                    .cloned()
                    .expect("an unread array");
                if let Some(a) = self.top().arrs.iter_mut().find(|a| a.name == name.name) {
                    a.uses += 1;
                }
                let i = self.index(&name);
                FExpr::Index(name.name, i)
            } else {
                break;
            };
            let extra = if self.rng.chance(0.5) {
                extra
            } else {
                self.bounded(extra)
            };
            let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub, BinOp::Mul]);
            e = FExpr::Bin(op, Box::new(e), Box::new(extra));
        }
        e
    }

    fn read_named(&mut self, name: &str) {
        for s in self.scopes.iter_mut().rev() {
            if let Some(v) = s.floats.iter_mut().rev().find(|v| v.name == name) {
                v.uses += 1;
                return;
            }
        }
    }

    fn ints(&self) -> Vec<IVar> {
        self.scopes.iter().flat_map(|s| s.ints.clone()).collect()
    }

    fn arrs(&self) -> Vec<Arr> {
        let mut seen: Vec<Arr> = Vec::new();
        for s in self.scopes.iter().rev() {
            for a in s.arrs.iter().rev() {
                if !seen.iter().any(|b| b.name == a.name) {
                    seen.push(a.clone());
                }
            }
        }
        seen.retain(|a| !a.hidden);
        seen
    }

    fn name_in_use(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| {
            s.floats.iter().any(|v| v.name == name)
                || s.ints.iter().any(|v| v.name == name)
                || s.arrs.iter().any(|v| v.name == name)
        })
    }

    /// A new float name, sometimes one that a macro might want for itself.
    fn fresh_float_name(&mut self) -> String {
        if self.feat.hygiene && self.rng.chance(0.12) {
            let n = self.rng.pick(&HYGIENE_NAMES).to_string();
            if !self.name_in_use(&n) {
                return n;
            }
        }
        let n = self.rng.pick(&FLOAT_NAMES).to_string();
        if !self.name_in_use(&n) {
            return n;
        }
        self.fresh += 1;
        format!("t{}", self.fresh)
    }

    fn fresh_int_name(&mut self) -> String {
        for n in ["i", "j", "k", "m"] {
            if !self.name_in_use(n) {
                return n.to_string();
            }
        }
        self.fresh += 1;
        format!("i{}", self.fresh)
    }

    fn fresh_arr_name(&mut self) -> String {
        for n in ["buf", "z", "h", "st"] {
            if !self.name_in_use(n) {
                return n.to_string();
            }
        }
        self.fresh += 1;
        format!("buf{}", self.fresh)
    }

    // ---------------------------------------------------------------------------------------
    // Functions and blocks.
    // ---------------------------------------------------------------------------------------

    fn function(&mut self, name: &str, entry: bool) -> Function {
        self.push();
        // An entry built around fused loops (drawn only with the feature on, so that the other
        // levels keep their programs).
        let fused = entry && self.feat.fused_loops && self.rng.chance(FUSED_SHARE);
        // An entry built around selection loops (the same: no draw with the feature off).
        let selecting =
            entry && !fused && self.selection_features() && self.rng.chance(SELECTION_SHARE);
        // An entry built around row loops (the same: no draw with the feature off).
        let rowing =
            entry && !fused && !selecting && self.row_features() && self.rng.chance(ROW_SHARE);
        // An entry built around runs of jammable loops (the same: no draw with the feature off).
        let jamming = entry
            && !fused
            && !selecting
            && !rowing
            && self.jam_features()
            && self.feat.slices
            && self.rng.chance(JAM_SHARE);
        let mut params = Vec::new();
        let n_scalars = if entry {
            self.rng.range(1, 4)
        } else {
            self.rng.range(1, 3)
        };
        let names = if entry {
            ["x", "y", "z", "w"]
        } else {
            ["a", "b", "u", "v"]
        };
        for n in names.iter().take(n_scalars) {
            params.push(Param::Scalar(n.to_string()));
        }
        if let Some(len) = self.slice_helper {
            let at = self.rng.below(params.len() + 1);
            params.insert(at, Param::Slice("q".to_string(), len));
        }
        if entry
            && self.feat.slices
            && (fused || selecting || rowing || jamming || self.rng.chance(0.7))
        {
            let len = self.rng.range(2, 5);
            // Row loops treat `s` as a matrix: mostly longer (2 leaves some loops empty).
            let len = if rowing {
                *self.rng.pick(&[2, 4, 5, 6, 6, 7, 8, 9])
            } else if jamming {
                // (Often the length of a helper taking a slice, which callers must match; no
                // draw without one, so that the other feature sets keep their programs.)
                match self.slice_callees.first() {
                    Some(&(_, _, l)) if self.rng.chance(0.5) => l,
                    _ => *self.rng.pick(&[1, 2, 3, 3, 4, 4, 5, 6]),
                }
            } else {
                len
            };
            let at = self.rng.below(params.len() + 1);
            params.insert(at, Param::Slice("s".to_string(), len));
            if self.rng.chance(if rowing { 0.5 } else { 0.25 }) {
                let len = self.rng.range(1, 4);
                params.push(Param::Slice("q".to_string(), len));
            }
        }
        for p in &params {
            match p {
                Param::Scalar(n) => self.declare_float(n, false),
                Param::Slice(n, len) => {
                    let arr = Arr {
                        name: n.clone(),
                        len: *len,
                        mutable: false,
                        uses: 0,
                        hidden: false,
                        is_vec: false,
                    };
                    self.top().arrs.push(arr);
                }
            }
        }
        let wrt = if entry && self.feat.wrt && params.len() > 1 && self.rng.chance(0.25) {
            let mut names: Vec<String> = params
                .iter()
                .filter(|_| self.rng.chance(0.6))
                .map(|p| p.name().to_string())
                .collect();
            if names.is_empty() {
                names.push(self.rng.pick(&params).name().to_string());
            }
            Some(names)
        } else {
            None
        };
        self.returns_ok = self.feat.early_return;
        self.nesting = 0;
        self.loop_depth = 0;
        let n_stmts = if entry {
            self.rng.range(2, 6)
        } else {
            self.rng.range(1, 3)
        };
        let body = if fused {
            self.fused_body()
        } else if selecting {
            self.selection_body()
        } else if rowing {
            self.row_body()
        } else if jamming {
            self.jam_body()
        } else if self.slice_helper.is_some() {
            self.slice_helper_body(n_stmts)
        } else {
            self.block(n_stmts, true)
        };
        self.pop();
        Function {
            name: name.to_string(),
            public: self.rng.chance(0.5),
            params,
            wrt,
            body,
        }
    }

    /// A block of `n` statements (some kinds give several), with a tail if `tail`.
    fn block(&mut self, n: usize, tail: bool) -> Block {
        self.push();
        let mut stmts = Vec::new();
        for _ in 0..n {
            stmts.extend(self.stmt());
        }
        let tail = tail.then(|| self.tail());
        self.pop();
        Block { stmts, tail }
    }

    /// A nested block (branch arm or loop body): one level deeper.
    fn sub_block(&mut self, n: usize, tail: bool) -> Block {
        self.nesting += 1;
        let b = self.block(n, tail);
        self.nesting -= 1;
        b
    }

    fn stmt(&mut self) -> Vec<Stmt> {
        let mutables: Vec<FVar> = self.floats().into_iter().filter(|v| v.mutable).collect();
        let bufs: Vec<Arr> = self.arrs().into_iter().filter(|a| a.mutable).collect();
        let deep = self.nesting >= 2 || self.in_if_expr;
        let branches = self.feat.branches && !deep;
        let loops = self.feat.loops && !deep && self.loop_depth < 2;
        // Inside branches and loops, statements mostly update outer state: that is what makes
        // the branch or loop matter for the result.
        let inner = self.nesting > 0;
        let weights = [
            if inner { 10 } else { 30 },                  // 0 let
            if self.floats().is_empty() { 0 } else { 8 }, // 1 shadowing let
            match (mutables.is_empty() || self.pure, inner) {
                (true, _) => 0,
                (false, false) => 22,
                (false, true) => 45,
            }, // 2 assignment
            if branches { 10 } else { 0 },                // 3 if statement
            if branches && !self.no_if_expr { 6 } else { 0 }, // 4 let with if expression
            if self.returns_ok && self.feat.branches && self.nesting < 3 {
                5
            } else {
                0
            }, // 5 early return
            if loops { 9 } else { 0 },                    // 6 for loop
            if loops { 5 } else { 0 },                    // 7 while loop
            if self.feat.buffers && !deep { 5 } else { 0 }, // 8 local buffer
            if bufs.is_empty() || self.pure { 0 } else { 12 }, // 9 element assignment
            if self.selection_features()
                && !deep
                && self.loop_depth < 2
                && !self.pure
                && !self.selection_sources().is_empty()
            {
                SELECTION_WEIGHT
            } else {
                0
            }, // 10 selection loop
            if self.jam_features()
                && !deep
                && self.loop_depth < 2
                && !self.pure
                && !self.arrs().is_empty()
                && (self.nesting == 0 || self.outer_mutables().next().is_some())
            {
                JAM_WEIGHT
            } else {
                0
            }, // 11 run of jammable loops
        ];
        match self.rng.weighted(&weights) {
            0 => vec![self.let_stmt(None)],
            1 => {
                let fl = self.floats();
                let v = self.rng.pick(&fl).name.clone();
                vec![self.let_stmt(Some(v))]
            }
            2 => {
                let v = self.pick_assign_target(&mutables);
                vec![self.assign(Place::Var(v))]
            }
            3 => vec![self.if_stmt()],
            4 => {
                let init = self.if_expr();
                let name = self.fresh_float_name();
                let mutable = self.rng.chance(0.3);
                self.declare_float(&name, mutable);
                vec![Stmt::Let {
                    name,
                    mutable,
                    annotate: self.rng.chance(0.3),
                    init,
                }]
            }
            5 => vec![self.early_return()],
            6 => self.for_loop(),
            7 => self.while_loop(),
            8 => self.buffer(),
            9 => {
                let a = self.rng.pick(&bufs).clone();
                let mut idx = self.index(&a);
                if a.is_vec {
                    idx = len_as_literal(idx, &a.name, a.len);
                }
                vec![self.assign(Place::Elem(a.name, idx))]
            }
            10 => self.selection_stmt(),
            _ => self.jam_stmt(),
        }
    }

    /// Prefers variables declared outside the innermost loop: loop-carried state.
    fn pick_assign_target(&mut self, mutables: &[FVar]) -> String {
        let carried: Vec<&FVar> = mutables
            .iter()
            .filter(|v| v.loop_depth < self.loop_depth)
            .collect();
        if !carried.is_empty() && self.rng.chance(0.8) {
            return self.rng.pick(&carried).name.clone();
        }
        self.rng.pick(mutables).name.clone()
    }

    fn let_stmt(&mut self, shadow: Option<String>) -> Stmt {
        let name = shadow.unwrap_or_else(|| self.fresh_float_name());
        // The initialiser is generated before the name is declared: `let x = x * 2.0` reads the
        // outer `x`.
        let init = if self.rng.chance(0.04) {
            FExpr::Lit(*self.rng.pick(&[0.0, 1.0, 0.5]))
        } else {
            self.expr(3)
        };
        let constant = is_const(&init);
        let mutable = constant || self.rng.chance(0.35);
        self.declare_float(&name, mutable);
        Stmt::Let {
            name,
            mutable,
            // `let t = 1.0; t.sin()` does not compile: `{float}` has no methods.
            annotate: constant || self.rng.chance(0.2),
            init,
        }
    }

    fn assign(&mut self, place: Place) -> Stmt {
        let in_loop = self.loop_depth > 0;
        let (op, value) = match self.rng.below(6) {
            0 | 1 => (AssignOp::Compound(BinOp::Add), self.expr(2)),
            2 => (AssignOp::Compound(BinOp::Sub), self.expr(2)),
            // In loops, products and quotients are kept bounded so that state cannot explode.
            3 => {
                let e = self.expr(2);
                let e = if in_loop { self.bounded(e) } else { e };
                (AssignOp::Compound(BinOp::Mul), e)
            }
            4 => {
                let e = self.expr(2);
                (AssignOp::Compound(BinOp::Div), self.positive(e, true))
            }
            _ => {
                let e = self.expr(3);
                let e = if in_loop && self.rng.chance(0.5) {
                    self.bounded(e)
                } else {
                    e
                };
                (AssignOp::Set, e)
            }
        };
        // A new value nobody has read yet: the block's tail will want it.
        match &place {
            Place::Var(v) => self.mark_unread(v, false),
            Place::Elem(a, _) => self.mark_unread(a, true),
        }
        Stmt::Assign { place, op, value }
    }

    fn mark_unread(&mut self, name: &str, array: bool) {
        for s in self.scopes.iter_mut().rev() {
            if array {
                if let Some(a) = s.arrs.iter_mut().rev().find(|a| a.name == name) {
                    a.uses = 0;
                    return;
                }
            } else if let Some(v) = s.floats.iter_mut().rev().find(|v| v.name == name) {
                v.uses = 0;
                return;
            }
        }
    }

    fn if_stmt(&mut self) -> Stmt {
        let n_arms = self.rng.range(1, 3);
        let mut arms = Vec::new();
        for _ in 0..n_arms {
            let c = self.cond();
            let n = self.rng.range(1, 2);
            arms.push((c, self.sub_block(n, false)));
        }
        let els = if self.rng.chance(0.6) {
            let n = self.rng.range(1, 2);
            Some(self.sub_block(n, false))
        } else {
            None
        };
        Stmt::If { arms, els }
    }

    /// `if c { ..; return e; }`, a conditional early exit.
    fn early_return(&mut self) -> Stmt {
        let c = self.cond();
        self.nesting += 1;
        self.push();
        let mut stmts = Vec::new();
        if self.rng.chance(0.4) {
            stmts.extend(self.stmt());
        }
        stmts.push(Stmt::Return(self.expr(3)));
        self.pop();
        self.nesting -= 1;
        Stmt::If {
            arms: vec![(c, Block { stmts, tail: None })],
            els: None,
        }
    }

    fn if_expr(&mut self) -> FExpr {
        let saved = self.returns_ok;
        self.returns_ok = false;
        self.in_if_expr = true;
        let n_arms = self.rng.range(1, 2);
        let mut arms = Vec::new();
        for _ in 0..n_arms {
            let c = self.cond();
            let n = self.rng.range(0, 1);
            arms.push((c, self.sub_block(n, true)));
        }
        let n = self.rng.range(0, 1);
        let els = self.sub_block(n, true);
        self.returns_ok = saved;
        self.in_if_expr = false;
        FExpr::If(arms, Box::new(els))
    }

    /// The loop bound and the range its index takes: constants, or the length of an array.
    fn loop_range(&mut self) -> (IExpr, IExpr, usize, usize) {
        let arrs = self.arrs();
        if !arrs.is_empty() && self.rng.chance(0.6) {
            let a = self.rng.pick(&arrs).clone();
            let start = if a.len > 1 && self.rng.chance(0.25) {
                1
            } else {
                0
            };
            return (IExpr::Lit(start), IExpr::Len(a.name), start, a.len - 1);
        }
        let start = if self.rng.chance(0.2) { 1 } else { 0 };
        let end = self.rng.range(start + 1, 4);
        (IExpr::Lit(start), IExpr::Lit(end), start, end - 1)
    }

    /// A loop body: a few statements that read the index and update state declared outside.
    fn loop_body(&mut self, ivar: IVar) -> Block {
        self.loop_depth += 1;
        self.nesting += 1;
        let saved = self.returns_ok;
        self.returns_ok = saved && self.feat.loop_return;
        self.push();
        self.top().ints.push(ivar);
        let n = self.rng.range(1, 3);
        let mut stmts = Vec::new();
        for _ in 0..n {
            stmts.extend(self.stmt());
        }
        self.pop();
        self.returns_ok = saved;
        self.nesting -= 1;
        self.loop_depth -= 1;
        Block { stmts, tail: None }
    }

    /// State carried by the loop about to be generated: an accumulator declared just before it.
    fn carried_state(&mut self, out: &mut Vec<Stmt>) {
        let have = self
            .floats()
            .iter()
            .any(|v| v.mutable && v.loop_depth == self.loop_depth);
        if !have || self.rng.chance(0.5) {
            let name = self.fresh_float_name();
            let init = if self.rng.chance(0.5) {
                FExpr::Lit(*self.rng.pick(&[0.0, 1.0]))
            } else {
                self.expr(2)
            };
            let annotate = is_const(&init) || self.rng.chance(0.2);
            self.declare_float(&name, true);
            out.push(Stmt::Let {
                name,
                mutable: true,
                annotate,
                init,
            });
        }
    }

    fn for_loop(&mut self) -> Vec<Stmt> {
        let mut out = Vec::new();
        self.carried_state(&mut out);
        let (start, end, lo, hi) = self.loop_range();
        let var = self.fresh_int_name();
        let rev = self.feat.rev_ranges && self.rng.chance(0.25);
        let body = self.loop_body(IVar {
            name: var.clone(),
            lo,
            hi,
        });
        out.push(Stmt::For {
            var,
            start,
            end,
            rev,
            body,
        });
        out
    }

    /// `let mut k = 0; while k < K [&& active] { ..; k += 1; }`
    fn while_loop(&mut self) -> Vec<Stmt> {
        let mut out = Vec::new();
        self.carried_state(&mut out);
        let k = self.fresh_int_name();
        let bound = self.rng.range(1, 4);
        out.push(Stmt::LetIdx {
            name: k.clone(),
            init: IExpr::Lit(0),
        });
        let counter = Cond::ICmp(CmpOp::Lt, IExpr::Var(k.clone()), IExpr::Lit(bound));
        let cond = if self.feat.active_while && self.rng.chance(0.5) {
            let active = self.cond_cmp(2);
            if self.rng.chance(0.5) {
                Cond::And(Box::new(counter), Box::new(active))
            } else {
                Cond::And(Box::new(active), Box::new(counter))
            }
        } else {
            counter
        };
        let mut body = self.loop_body(IVar {
            name: k.clone(),
            lo: 0,
            hi: bound - 1,
        });
        body.stmts.push(Stmt::IncIdx { name: k });
        out.push(Stmt::While { cond, body });
        out
    }

    /// `let mut buf = [0.0; n];` and its first writes.
    fn buffer(&mut self) -> Vec<Stmt> {
        let name = self.fresh_arr_name();
        let len = self.rng.range(2, 4);
        let mut out = vec![Stmt::LetBuf {
            name: name.clone(),
            len,
            annotate: self.rng.chance(0.5),
            bare: false,
            vec: None,
        }];
        let arr = Arr {
            name: name.clone(),
            len,
            mutable: true,
            uses: 0,
            hidden: false,
            is_vec: false,
        };
        if self.feat.loops && self.loop_depth < 2 && self.rng.chance(0.6) {
            let i = self.fresh_int_name();
            let ivar = IVar {
                name: i.clone(),
                lo: 0,
                hi: len - 1,
            };
            self.loop_depth += 1;
            self.push();
            self.top().ints.push(ivar);
            let value = self.expr(2);
            self.pop();
            self.loop_depth -= 1;
            out.push(Stmt::For {
                var: i.clone(),
                start: IExpr::Lit(0),
                end: IExpr::Len(name.clone()),
                rev: false,
                body: Block {
                    stmts: vec![Stmt::Assign {
                        place: Place::Elem(name.clone(), IExpr::Var(i)),
                        op: AssignOp::Set,
                        value,
                    }],
                    tail: None,
                },
            });
        } else {
            for k in 0..len {
                if k == 0 || self.rng.chance(0.7) {
                    let value = self.expr(2);
                    out.push(Stmt::Assign {
                        place: Place::Elem(name.clone(), IExpr::Lit(k)),
                        op: AssignOp::Set,
                        value,
                    });
                }
            }
        }
        self.top().arrs.push(arr);
        out
    }

    // ---------------------------------------------------------------------------------------
    // Fused loops.
    // ---------------------------------------------------------------------------------------

    /// `i + k` (sometimes `k + i`), or `i` for `k = 0`.
    fn plus(&mut self, i: &str, k: usize) -> IExpr {
        let var = Box::new(IExpr::Var(i.to_string()));
        match k {
            0 => *var,
            _ if self.rng.chance(0.15) => IExpr::Add(Box::new(IExpr::Lit(k)), var),
            _ => IExpr::Add(var, Box::new(IExpr::Lit(k))),
        }
    }

    /// The body of an entry function built around top-level loops whose iterations meet only
    /// through sums ([`Gen::fused_loop`]), ending in a value that uses the sums linearly, or
    /// (a near miss) not.
    fn fused_body(&mut self) -> Block {
        self.push();
        let mut stmts = Vec::new();
        for _ in 0..self.rng.range(0, 2) {
            stmts.extend(self.stmt());
        }
        let mut accs = Vec::new();
        let n_loops = if self.rng.chance(0.25) { 2 } else { 1 };
        for k in 0..n_loops {
            stmts.extend(self.fused_loop(&mut accs));
            if k + 1 < n_loops && self.rng.chance(0.4) {
                stmts.extend(self.stmt());
            }
        }
        if self.rng.chance(0.3) {
            stmts.extend(self.stmt());
        }
        let tail = self.fused_tail(&accs, &mut stmts);
        self.pop();
        Block {
            stmts,
            tail: Some(tail),
        }
    }

    /// A top-level `for` loop of the kind `#[gradient]` fuses (each iteration's reverse right
    /// after its forward), with what it needs declared before it:
    ///
    /// * accumulators (`let mut sum = 0.0;`), updated in the loop only by `sum += t`,
    ///   `sum -= t`, `sum = sum + t`, `sum = t + sum`, `sum = sum - t`, also in branches and
    ///   inner loops;
    /// * values private to an iteration: `let`s in the body, a scalar declared before the loop
    ///   and assigned first in each iteration, `let mut z = ..; for j in .. { z += .. }`, a
    ///   buffer declared before the loop (`vec![0.0; n]`, `[0.0; n]`) that each iteration
    ///   fills with `for j in 0..n { h[j] = .. }` and then reads or updates in place;
    /// * loads of slices and read-only buffers at `x[i]`, `x[i + 1]`, `x[i + 2]`, over
    ///   `0..x.len() - 2` and the like.
    ///
    /// Near misses, which must not be fused but must still be right, are mixed in: a buffer
    /// read before it is filled (loop-carried), a value the loop reads assigned again after
    /// it, a private scalar whose value from before the loop an earlier statement's derivative
    /// needs, loads under `if i < x.len()` in a range longer than `x`, `.rev()`, zero trips,
    /// a sum that reads itself, a random statement in the body (a call, a `while`, a write to
    /// outer state).
    fn fused_loop(&mut self, accs: &mut Vec<String>) -> Vec<Stmt> {
        let mut out = Vec::new();
        // Accumulators, hidden from random code: only their updates and the tail use them.
        let mut mine: Vec<String> = Vec::new();
        // An accumulator of an earlier loop (whose exit adjoint is then unknown: not fused).
        if !accs.is_empty() && self.rng.chance(0.25) {
            mine.push(self.rng.pick(accs).clone());
        }
        let n_new = if mine.is_empty() {
            self.rng.range(1, 3)
        } else {
            self.rng.range(0, 1)
        };
        for _ in 0..n_new {
            let name = self.fresh_name(&ACC_NAMES);
            let init = if self.rng.chance(0.6) {
                FExpr::Lit(*self.rng.pick(&[0.0, 0.0, 1.0]))
            } else {
                self.expr(2)
            };
            let annotate = is_const(&init) || self.rng.chance(0.2);
            out.push(Stmt::Let {
                name: name.clone(),
                mutable: true,
                annotate,
                init,
            });
            self.declare_hidden(&name, true);
            mine.push(name.clone());
            accs.push(name);
        }
        // Near miss: a value the loop reads, assigned again after it.
        let reassigned = if self.rng.chance(0.08) {
            let name = self.fresh_float_name();
            let init = self.operand(2);
            out.push(Stmt::Let {
                name: name.clone(),
                mutable: true,
                annotate: self.rng.chance(0.2),
                init,
            });
            self.declare_float(&name, true);
            Some(name)
        } else {
            None
        };
        // A scalar each iteration assigns before reading it, declared before the loop. Near
        // miss: its value from before the loop is read by a statement before the loop, whose
        // derivative needs it (`let mut z = x * x; let y = z.sin(); for .. { z = ..; } .. y`).
        let outer_private = if self.rng.chance(0.3) {
            let name = self.fresh_float_name();
            let init = if self.rng.chance(0.5) {
                FExpr::Lit(0.0)
            } else {
                self.operand(2)
            };
            let constant = is_const(&init);
            out.push(Stmt::Let {
                name: name.clone(),
                mutable: true,
                annotate: constant || self.rng.chance(0.2),
                init,
            });
            self.declare_hidden(&name, true);
            if !constant && self.rng.chance(0.6) {
                let u = self.fresh_float_name();
                let z = || Box::new(FExpr::Var(name.clone()));
                let init = match self.rng.below(3) {
                    0 => FExpr::Call1(Fn1::Sin, z()),
                    1 => FExpr::Bin(BinOp::Mul, z(), z()),
                    _ => FExpr::Call1(Fn1::Exp, Box::new(FExpr::Call1(Fn1::Cos, z()))),
                };
                out.push(Stmt::Let {
                    name: u.clone(),
                    mutable: false,
                    annotate: false,
                    init,
                });
                self.declare_float(&u, false);
            }
            Some(name)
        } else {
            None
        };
        // A buffer declared before the loop, filled by each iteration before it reads it.
        // Near miss (`carried`): filled before the loop, and each iteration reads an element
        // before writing it.
        let mut carried = false;
        let mut inside = None;
        let private_buf = if self.feat.buffers && self.rng.chance(0.45) {
            let slices: Vec<Arr> = self.arrs().into_iter().filter(|a| !a.mutable).collect();
            let (len, vec) = if !slices.is_empty() && self.rng.chance(0.3) {
                let a = self.rng.pick(&slices).clone();
                (a.len, Some(IExpr::Len(a.name)))
            } else {
                let len = self.rng.range(2, 4);
                (len, self.rng.chance(0.5).then_some(IExpr::Lit(len)))
            };
            let name = self.fresh_arr_name();
            let is_vec = vec.is_some();
            carried = self.rng.chance(0.12);
            let annotate = self.rng.chance(0.4);
            let bare = !annotate && self.rng.chance(0.5);
            let decl = Stmt::LetBuf {
                name: name.clone(),
                len,
                annotate,
                bare,
                vec: vec.clone(),
            };
            // Or declared by the body itself, first (`let mut h = vec![0.0; n];` per
            // iteration): new in every iteration.
            if !carried && self.rng.chance(0.35) {
                inside = Some(decl);
            } else {
                out.push(decl);
            }
            if carried {
                out.push(self.fill(&name, len, IExpr::Len(name.clone())));
            }
            self.top().arrs.push(Arr {
                name: name.clone(),
                len,
                mutable: true,
                uses: 0,
                hidden: !carried,
                is_vec,
            });
            let size = match vec {
                Some(IExpr::Len(a)) if self.rng.chance(0.8) => IExpr::Len(a),
                _ => IExpr::Lit(len),
            };
            Some((name, len, size))
        } else {
            None
        };
        // A buffer filled before the loop and only read in it (at `b[i + k]`, carried).
        if self.feat.buffers && self.rng.chance(0.2) {
            out.extend(self.buffer());
        }

        // The range: over an array (`0..x.len() - k`, so that `x[i + k]` is in bounds), over
        // constants, or (a near miss) longer than an array whose loads are then guarded.
        let arrs = self.arrs();
        let slices: Vec<Arr> = arrs.iter().filter(|a| !a.mutable).cloned().collect();
        let mut guard: Option<(String, usize)> = None;
        let mode = self.rng.weighted(&[
            if arrs.is_empty() { 0 } else { 8 },
            2,
            if slices.is_empty() { 0 } else { 2 },
        ]);
        let (start, end, hi) = match mode {
            0 => {
                let a = self.rng.pick(&arrs).clone();
                // Mostly `0..x.len() - 1` or `- 2`: loads at `i + 1`, `i + 2` then fit.
                let k = self.rng.weighted(&[1, 2, 2][..=a.len.min(2)]);
                let end = match k {
                    0 => IExpr::Len(a.name),
                    _ => IExpr::Sub(Box::new(IExpr::Len(a.name)), Box::new(IExpr::Lit(k))),
                };
                let start = usize::from(self.rng.chance(0.2));
                // With no trip at all, any nominal range will do: no load runs.
                (start, end, (a.len - k).saturating_sub(1).max(start))
            }
            1 => {
                let n = if self.rng.chance(0.05) {
                    0
                } else {
                    self.rng.range(1, 4)
                };
                (0, IExpr::Lit(n), n.saturating_sub(1))
            }
            _ => {
                let a = self.rng.pick(&slices).clone();
                let n = a.len + self.rng.range(1, 2);
                guard = Some((a.name, a.len));
                (0, IExpr::Lit(n), n - 1)
            }
        };
        let rev = self.feat.rev_ranges && self.rng.chance(0.15);
        let var = self.fresh_int_name();

        self.loop_depth += 1;
        self.nesting += 1;
        let saved_returns = self.returns_ok;
        self.returns_ok = saved_returns && self.feat.loop_return && self.rng.chance(0.05);
        let saved_index = self.fused_index.replace(var.clone());
        let saved = (self.no_calls, self.no_if_expr);
        self.no_calls = self.rng.chance(0.9);
        self.no_if_expr = self.rng.chance(0.9);
        self.push_with_int(&var, start, hi);
        let mut body = Vec::new();
        if let (true, Some((h, len, _))) = (carried, &private_buf) {
            // let prev = h[c]; h[c] = x[i] * prev;
            let c = self.rng.below(*len);
            let prev = self.fresh_float_name();
            body.push(Stmt::Let {
                name: prev.clone(),
                mutable: false,
                annotate: false,
                init: FExpr::Index(h.clone(), IExpr::Lit(c)),
            });
            let load = self.var_leaf();
            self.declare_float(&prev, false);
            self.read_named(&prev);
            let load = if self.rng.chance(0.5) {
                self.bounded(load)
            } else {
                load
            };
            body.push(Stmt::Assign {
                place: Place::Elem(h.clone(), IExpr::Lit(c)),
                op: AssignOp::Set,
                value: FExpr::Bin(BinOp::Mul, Box::new(load), Box::new(FExpr::Var(prev))),
            });
        }
        for _ in 0..self.rng.range(0, 2) {
            body.push(self.let_stmt(None));
        }
        if let Some(p) = &outer_private {
            let value = self.operand(2);
            body.push(Stmt::Assign {
                place: Place::Var(p.clone()),
                op: AssignOp::Set,
                value,
            });
            self.set_hidden(p, false, false);
            self.mark_unread(p, false);
        }
        if self.rng.chance(0.3) {
            body.extend(self.inner_private());
        }
        if let (false, Some((h, len, size))) = (carried, &private_buf) {
            // The fill's end: the buffer's size as written (`4`, `s.len()`), or (a near miss:
            // `h.len()` reads `h`, which the loop writes) its own length.
            let end = if self.rng.chance(0.15) {
                IExpr::Len(h.clone())
            } else {
                size.clone()
            };
            body.push(self.fill(h, *len, end.clone()));
            self.set_hidden(h, true, false);
            if self.rng.chance(0.5) {
                body.push(self.buffer_update(h, *len, &end));
            }
        }
        let n_updates = mine.len() + usize::from(self.rng.chance(0.3));
        for k in 0..n_updates {
            let acc = match mine.get(k) {
                Some(a) => a.clone(),
                None => self.rng.pick(&mine).clone(),
            };
            let update = match (&guard, k) {
                (Some((a, len)), 0) => self.guarded_update(&acc, a, *len, &var),
                _ => self.acc_update(&acc, &mine),
            };
            body.push(update);
        }
        if let Some(c) = &reassigned {
            let acc = self.rng.pick(&mine).clone();
            let load = self.var_leaf();
            self.read_named(c);
            body.push(Stmt::Assign {
                place: Place::Var(acc),
                op: AssignOp::Compound(BinOp::Add),
                value: FExpr::Bin(BinOp::Mul, Box::new(FExpr::Var(c.clone())), Box::new(load)),
            });
        }
        if self.rng.chance(0.1) {
            body.extend(self.stmt());
        }
        let declared_inside = inside.is_some();
        if let Some(d) = inside {
            body.insert(0, d);
        }
        self.pop();
        (self.no_calls, self.no_if_expr) = saved;
        self.fused_index = saved_index;
        self.returns_ok = saved_returns;
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var,
            start: IExpr::Lit(start),
            end,
            rev,
            body: Block {
                stmts: body,
                tail: None,
            },
        });
        // Private values stay out of reach after the loop (mostly: reading one is a near miss).
        if let Some(p) = &outer_private {
            if self.rng.chance(0.9) {
                self.set_hidden(p, false, true);
            }
        }
        if let (false, Some((h, _, _))) = (carried, &private_buf) {
            // (One declared inside is out of scope after the loop.)
            if declared_inside || self.rng.chance(0.9) {
                self.set_hidden(h, true, true);
            }
        }
        if let Some(c) = reassigned {
            let cur = Box::new(FExpr::Var(c.clone()));
            let value = match self.rng.below(3) {
                0 => FExpr::Call1(Fn1::Sin, cur),
                1 => FExpr::Bin(BinOp::Add, cur, Box::new(self.operand(1))),
                _ => FExpr::Bin(BinOp::Mul, cur, Box::new(FExpr::Lit(0.5))),
            };
            out.push(Stmt::Assign {
                place: Place::Var(c.clone()),
                op: AssignOp::Set,
                value,
            });
            self.mark_unread(&c, false);
        }
        out
    }

    /// A new name from `names`, or a numbered one.
    fn fresh_name(&mut self, names: &[&str]) -> String {
        let n = self.rng.pick(names).to_string();
        if !self.name_in_use(&n) {
            return n;
        }
        self.fresh_float_name()
    }

    /// `for j in 0..end { name[j] = e; }`: `e` does not read `name` (hidden or not yet
    /// declared), and is not a constant (whose `{float}` would leave a bare buffer untyped).
    fn fill(&mut self, name: &str, len: usize, end: IExpr) -> Stmt {
        let j = self.fresh_int_name();
        self.loop_depth += 1;
        self.push_with_int(&j, 0, len - 1);
        let value = self.operand(2);
        self.pop();
        self.loop_depth -= 1;
        Stmt::For {
            var: j.clone(),
            start: IExpr::Lit(0),
            end,
            rev: false,
            body: Block {
                stmts: vec![Stmt::Assign {
                    place: Place::Elem(name.to_string(), IExpr::Var(j)),
                    op: AssignOp::Set,
                    value,
                }],
                tail: None,
            },
        }
    }

    /// An in-place update of a filled buffer at the indices of a loop with the fill's end:
    /// `for j in 0..n { for r in (j + 1)..n { h[r] -= h[j] * e; } }` (an elimination step) or
    /// `for r in 0..n { h[r] = h[r] * e; }`. Near miss: the end spelt otherwise (`h.len()`
    /// or `4` for `s.len()`), which the macro cannot match with the fill's.
    fn buffer_update(&mut self, h: &str, len: usize, end: &IExpr) -> Stmt {
        let end = if self.rng.chance(0.15) {
            match end {
                IExpr::Len(a) if a == h => IExpr::Lit(len),
                _ => IExpr::Len(h.to_string()),
            }
        } else {
            end.clone()
        };
        self.loop_depth += 1;
        self.nesting += 1;
        let j = self.fresh_int_name();
        self.push_with_int(&j, 0, len - 1);
        let stmt = if self.rng.chance(0.5) {
            let r = self.fresh_int_name();
            self.loop_depth += 1;
            self.push_with_int(&r, 1, len - 1);
            let e = self.operand(1);
            let e = self.bounded(e);
            let value = FExpr::Bin(
                BinOp::Mul,
                Box::new(FExpr::Bin(
                    BinOp::Mul,
                    Box::new(FExpr::Lit(0.5)),
                    Box::new(FExpr::Index(h.to_string(), IExpr::Var(j.clone()))),
                )),
                Box::new(e),
            );
            self.pop();
            self.loop_depth -= 1;
            let inner = Stmt::For {
                var: r.clone(),
                start: IExpr::Add(Box::new(IExpr::Var(j.clone())), Box::new(IExpr::Lit(1))),
                end: end.clone(),
                rev: false,
                body: Block {
                    stmts: vec![Stmt::Assign {
                        place: Place::Elem(h.to_string(), IExpr::Var(r)),
                        op: AssignOp::Compound(BinOp::Sub),
                        value,
                    }],
                    tail: None,
                },
            };
            Stmt::For {
                var: j,
                start: IExpr::Lit(0),
                end,
                rev: false,
                body: Block {
                    stmts: vec![inner],
                    tail: None,
                },
            }
        } else {
            let at = || FExpr::Index(h.to_string(), IExpr::Var(j.clone()));
            let (op, value) = match self.rng.below(3) {
                0 => {
                    let e = self.operand(1);
                    let e = self.bounded(e);
                    (
                        AssignOp::Set,
                        FExpr::Bin(BinOp::Mul, Box::new(at()), Box::new(e)),
                    )
                }
                1 => (AssignOp::Compound(BinOp::Add), self.expr(2)),
                _ => {
                    let e = self.operand(1);
                    (AssignOp::Compound(BinOp::Mul), self.bounded(e))
                }
            };
            Stmt::For {
                var: j.clone(),
                start: IExpr::Lit(0),
                end,
                rev: false,
                body: Block {
                    stmts: vec![Stmt::Assign {
                        place: Place::Elem(h.to_string(), IExpr::Var(j)),
                        op,
                        value,
                    }],
                    tail: None,
                },
            }
        };
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        stmt
    }

    /// `let mut z = e; for j in 0..n { z += e(j); }`: a value private to the iteration, made
    /// by an inner loop.
    fn inner_private(&mut self) -> Vec<Stmt> {
        let name = self.fresh_float_name();
        let init = if self.rng.chance(0.4) {
            FExpr::Lit(0.0)
        } else {
            self.expr(2)
        };
        let annotate = is_const(&init) || self.rng.chance(0.2);
        let mut out = vec![Stmt::Let {
            name: name.clone(),
            mutable: true,
            annotate,
            init,
        }];
        let j = self.fresh_int_name();
        let (end, hi) = self.small_range();
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&j, 0, hi);
        let e = self.operand(2);
        let e = if self.rng.chance(0.5) {
            self.bounded(e)
        } else {
            e
        };
        let (op, value) = match self.rng.below(4) {
            0 => (AssignOp::Compound(BinOp::Sub), e),
            1 => (
                AssignOp::Set,
                FExpr::Bin(
                    BinOp::Add,
                    Box::new(FExpr::Bin(
                        BinOp::Mul,
                        Box::new(FExpr::Lit(0.5)),
                        Box::new(FExpr::Var(name.clone())),
                    )),
                    Box::new(e),
                ),
            ),
            _ => (AssignOp::Compound(BinOp::Add), e),
        };
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var: j,
            start: IExpr::Lit(0),
            end,
            rev: false,
            body: Block {
                stmts: vec![Stmt::Assign {
                    place: Place::Var(name.clone()),
                    op,
                    value,
                }],
                tail: None,
            },
        });
        self.declare_float(&name, true);
        out
    }

    /// The bound of an inner loop and the largest index: a constant or an array's length.
    fn small_range(&mut self) -> (IExpr, usize) {
        let arrs = self.arrs();
        if !arrs.is_empty() && self.rng.chance(0.4) {
            let a = self.rng.pick(&arrs).clone();
            return (IExpr::Len(a.name), a.len - 1);
        }
        let n = self.rng.range(1, 3);
        (IExpr::Lit(n), n - 1)
    }

    /// A term to add to an accumulator: it never reads the accumulators (they are hidden).
    /// Often a stencil of the loop's loads, `c * (x[i + 1] - x[i] * x[i]).powi(2) + ..`.
    fn fused_term(&mut self) -> FExpr {
        let loads = self.fused_loads();
        if loads.is_empty() || !self.rng.chance(0.4) {
            let e = self.operand(2);
            return if self.rng.chance(0.3) {
                self.bounded(e)
            } else {
                e
            };
        }
        let (a, i, kmax) = self.rng.pick(&loads).clone();
        let b = Box::new;
        let at = |g: &mut Gen, k: usize| FExpr::Index(a.clone(), g.plus(&i, k));
        match self.rng.below(4) {
            0 if kmax >= 1 => {
                // c * (x[i + 1] - x[i] * x[i]).powi(2) + (1.0 - x[i]).powi(2)
                let c = *self.rng.pick(&[1.0, 10.0, 100.0]);
                let d = FExpr::Bin(
                    BinOp::Sub,
                    b(at(self, 1)),
                    b(FExpr::Bin(BinOp::Mul, b(at(self, 0)), b(at(self, 0)))),
                );
                let e = FExpr::Bin(BinOp::Sub, b(FExpr::Lit(1.0)), b(at(self, 0)));
                FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Bin(
                        BinOp::Mul,
                        b(FExpr::Lit(c)),
                        b(FExpr::Powi(b(d), 2)),
                    )),
                    b(FExpr::Powi(b(e), 2)),
                )
            }
            1 if kmax >= 2 => {
                // (x[i + 2] - 2.0 * x[i + 1] + x[i]).powi(2)
                let d = FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Bin(
                        BinOp::Sub,
                        b(at(self, 2)),
                        b(FExpr::Bin(BinOp::Mul, b(FExpr::Lit(2.0)), b(at(self, 1)))),
                    )),
                    b(at(self, 0)),
                );
                FExpr::Powi(b(d), 2)
            }
            2 => {
                // (x[i + k] - e).powi(2)
                let k = self.rng.range(0, kmax);
                let e = self.leaf();
                FExpr::Powi(b(FExpr::Bin(BinOp::Sub, b(at(self, k)), b(e))), 2)
            }
            _ => {
                let k = self.rng.range(0, kmax);
                let e = self.operand(1);
                FExpr::Bin(BinOp::Mul, b(at(self, k)), b(e))
            }
        }
    }

    /// The arrays `a` that the fused loop's index `i` can load at `a[i + k]`, `k <= kmax`.
    fn fused_loads(&mut self) -> Vec<(String, String, usize)> {
        let Some(i) = self.fused_index.clone() else {
            return Vec::new();
        };
        let Some(v) = self.ints().into_iter().rev().find(|v| v.name == i) else {
            return Vec::new();
        };
        let out: Vec<(String, String, usize)> = self
            .arrs()
            .into_iter()
            .filter(|a| v.hi < a.len)
            .map(|a| (a.name, i.clone(), (a.len - 1 - v.hi).min(2)))
            .collect();
        for (a, _, _) in &out {
            for s in self.scopes.iter_mut().rev() {
                if let Some(b) = s.arrs.iter_mut().rev().find(|b| b.name == *a) {
                    b.uses += 1;
                    break;
                }
            }
        }
        out
    }

    /// An update of accumulator `acc`: alone, in a branch (another accumulator in the other
    /// arm), or in an inner loop.
    fn acc_update(&mut self, acc: &str, mine: &[String]) -> Stmt {
        match self.rng.below(10) {
            0..=5 => self.acc_assign(acc),
            6 | 7 => {
                let c = self.cond();
                self.nesting += 1;
                self.push();
                let then = self.acc_assign(acc);
                self.pop();
                let els = if self.rng.chance(0.4) {
                    let other = self.rng.pick(mine).clone();
                    self.push();
                    let e = self.acc_assign(&other);
                    self.pop();
                    Some(Block {
                        stmts: vec![e],
                        tail: None,
                    })
                } else {
                    None
                };
                self.nesting -= 1;
                Stmt::If {
                    arms: vec![(
                        c,
                        Block {
                            stmts: vec![then],
                            tail: None,
                        },
                    )],
                    els,
                }
            }
            _ => {
                let j = self.fresh_int_name();
                let (end, hi) = self.small_range();
                self.loop_depth += 1;
                self.nesting += 1;
                self.push_with_int(&j, 0, hi);
                let a = self.acc_assign(acc);
                self.pop();
                self.nesting -= 1;
                self.loop_depth -= 1;
                Stmt::For {
                    var: j,
                    start: IExpr::Lit(0),
                    end,
                    rev: false,
                    body: Block {
                        stmts: vec![a],
                        tail: None,
                    },
                }
            }
        }
    }

    /// `acc += t`, `acc -= t`, `acc = acc + t`, `acc = t + acc`, `acc = acc - t`; rarely (a
    /// near miss) `acc = 0.5 * acc + t`, which reads it.
    fn acc_assign(&mut self, acc: &str) -> Stmt {
        let t = Box::new(self.fused_term());
        let v = || Box::new(FExpr::Var(acc.to_string()));
        let (op, value) = match self.rng.below(30) {
            0..=10 => (AssignOp::Compound(BinOp::Add), *t),
            11..=16 => (AssignOp::Compound(BinOp::Sub), *t),
            17..=20 => (AssignOp::Set, FExpr::Bin(BinOp::Add, v(), t)),
            21..=24 => (AssignOp::Set, FExpr::Bin(BinOp::Add, t, v())),
            25..=28 => (AssignOp::Set, FExpr::Bin(BinOp::Sub, v(), t)),
            _ => {
                let c = Box::new(FExpr::Lit(*self.rng.pick(&[0.5, 0.9])));
                (
                    AssignOp::Set,
                    FExpr::Bin(BinOp::Add, Box::new(FExpr::Bin(BinOp::Mul, c, v())), t),
                )
            }
        };
        Stmt::Assign {
            place: Place::Var(acc.to_string()),
            op,
            value,
        }
    }

    /// `if i < a.len() { acc += .. a[i] .. }` (or `i + 1 < a.len()` and `a[i + 1]`), in a
    /// loop whose range is longer than `a`.
    fn guarded_update(&mut self, acc: &str, a: &str, len: usize, i: &str) -> Stmt {
        let off = if len >= 2 && self.rng.chance(0.3) {
            1
        } else {
            0
        };
        let cond = Cond::ICmp(CmpOp::Lt, self.plus(i, off), IExpr::Len(a.to_string()));
        let narrowed = len - 1 - off;
        let mut saved = None;
        for s in self.scopes.iter_mut().rev() {
            if let Some(v) = s.ints.iter_mut().find(|v| v.name == i) {
                saved = Some(v.hi);
                v.hi = v.hi.min(narrowed);
                break;
            }
        }
        self.nesting += 1;
        self.push();
        let update = self.acc_assign(acc);
        self.pop();
        self.nesting -= 1;
        for s in self.scopes.iter_mut().rev() {
            if let Some(v) = s.ints.iter_mut().find(|v| v.name == i) {
                v.hi = saved.expect("the index is in scope");
                break;
            }
        }
        Stmt::If {
            arms: vec![(
                cond,
                Block {
                    stmts: vec![update],
                    tail: None,
                },
            )],
            els: None,
        }
    }

    /// The function's value: the accumulators combined linearly (`sum`, `2.0 * sum - total`,
    /// `(sum - total) * 0.5`, `sum / (s.len() as f64)`), sometimes through a `let`, plus or
    /// minus a random tail. Near misses: `sum * sum`, `sum.sin()`, `sum * y`.
    fn fused_tail(&mut self, accs: &[String], stmts: &mut Vec<Stmt>) -> FExpr {
        let b = Box::new;
        let mut lin: Option<FExpr> = None;
        for a in accs {
            let v = FExpr::Var(a.clone());
            let arrs = self.arrs();
            let t = match self.rng.below(8) {
                3 => FExpr::Bin(
                    BinOp::Mul,
                    b(FExpr::Lit(*self.rng.pick(&[2.0, 0.5, 3.0, 0.25]))),
                    b(v),
                ),
                4 => FExpr::Bin(BinOp::Div, b(v), b(FExpr::Lit(*self.rng.pick(&[2.0, 4.0])))),
                5 if !arrs.is_empty() => {
                    let a = self.rng.pick(&arrs).name.clone();
                    FExpr::Bin(BinOp::Div, b(v), b(FExpr::Cast(IExpr::Len(a))))
                }
                6 => FExpr::Neg(b(v)),
                7 => FExpr::Bin(BinOp::Mul, b(v), b(FExpr::Lit(1.5))),
                _ => v,
            };
            lin = Some(match lin {
                None => t,
                Some(l) => {
                    let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub]);
                    FExpr::Bin(op, b(l), b(t))
                }
            });
        }
        let mut lin = lin.expect("a fused loop has an accumulator");
        if self.rng.chance(0.15) {
            lin = FExpr::Bin(BinOp::Mul, b(lin), b(FExpr::Lit(0.5)));
        }
        if self.rng.chance(0.1) {
            let a = || FExpr::Var(accs[0].clone());
            lin = match self.rng.below(4) {
                0 => FExpr::Bin(BinOp::Mul, b(a()), b(a())),
                1 => FExpr::Call1(Fn1::Sin, b(lin)),
                2 => FExpr::Bin(BinOp::Mul, b(lin), b(self.var_leaf())),
                _ => FExpr::Bin(
                    BinOp::Add,
                    b(lin),
                    b(FExpr::Bin(BinOp::Mul, b(a()), b(self.var_leaf()))),
                ),
            };
        }
        if self.rng.chance(0.25) {
            let name = self.fresh_float_name();
            stmts.push(Stmt::Let {
                name: name.clone(),
                mutable: false,
                annotate: self.rng.chance(0.3),
                init: lin,
            });
            self.declare_hidden(&name, false);
            lin = FExpr::Var(name);
        }
        if !self.rng.chance(0.7) {
            return lin;
        }
        let other = self.tail();
        let op = if self.rng.chance(0.05) {
            BinOp::Mul
        } else {
            *self.rng.pick(&[BinOp::Add, BinOp::Sub])
        };
        if self.rng.chance(0.5) {
            FExpr::Bin(op, b(lin), b(other))
        } else {
            FExpr::Bin(op, b(other), b(lin))
        }
    }

    // ---------------------------------------------------------------------------------------
    // Row loops.
    // ---------------------------------------------------------------------------------------

    /// Whether row loops may be generated (they need loops and slices too).
    fn row_features(&self) -> bool {
        self.feat.row_loops && self.feat.loops && self.feat.slices
    }

    /// `let name = init;` of an integer that keeps the value `value`, visible to random code.
    fn let_int(
        &mut self,
        names: &[&str],
        init: IExpr,
        value: usize,
        out: &mut Vec<Stmt>,
    ) -> String {
        let name = self.fresh_int_from(names);
        out.push(Stmt::LetInt {
            name: name.clone(),
            init,
            annotate: self.rng.chance(0.3),
        });
        self.top().ints.push(IVar {
            name: name.clone(),
            lo: value,
            hi: value,
        });
        name
    }

    /// The body of an entry function built around one or two row sites (loops over `s` as a
    /// matrix, at an offset, over a packed triangle, through local buffers), ending in a value
    /// that uses their results, and often a random tail.
    ///
    /// Their inner loops access memory at an index that steps by one with the loop's index
    /// (`s[r * cols + j]`, `s[j + r * cols]`, `s[b + j]`, a counter set first in the body,
    /// `z[i]` of a local buffer), which `#[gradient]` reads through a window taken before the
    /// loop; near misses ([`ROW_NEAR_MISS`]) take none, or not for every access: a counter
    /// incremented in the body, a base that changes in the loop, the access under an `if` in
    /// a longer range, a `break`, a second access to the same memory, a buffer declared in the
    /// loop. Every index is in bounds by construction: shapes come from `s.len()`, whose value
    /// the generator knows.
    fn row_body(&mut self) -> Block {
        self.push();
        let mut stmts = Vec::new();
        if self.rng.chance(0.4) {
            stmts.extend(self.stmt());
        }
        let n = if self.rng.chance(0.35) { 2 } else { 1 };
        let mut value: Option<FExpr> = None;
        for _ in 0..n {
            let u = self.row_site(&mut stmts);
            value = Some(match value {
                None => u,
                Some(v) => {
                    let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub, BinOp::Mul]);
                    FExpr::Bin(op, bx(v), bx(u))
                }
            });
            if self.rng.chance(0.25) {
                stmts.extend(self.stmt());
            }
        }
        let value = value.expect("a row site");
        let tail = if self.rng.chance(0.5) {
            let other = self.tail();
            let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub]);
            FExpr::Bin(op, bx(value), bx(other))
        } else {
            value
        };
        self.pop();
        Block {
            stmts,
            tail: Some(tail),
        }
    }

    /// One row site with its accumulator (declared before it, hidden from random code):
    /// returns an expression of the accumulator, linear or not.
    fn row_site(&mut self, out: &mut Vec<Stmt>) -> FExpr {
        let s = self
            .arrs()
            .into_iter()
            .find(|a| a.name == "s" && !a.mutable)
            .expect("a row entry has the slice `s`");
        let acc = self.fresh_name(&ACC_NAMES);
        let recurrence = self.rng.chance(0.35);
        let init = match (recurrence, self.rng.chance(0.5)) {
            (true, true) => self.var_leaf(),
            (true, false) => FExpr::Lit(0.5),
            _ => FExpr::Lit(0.0),
        };
        out.push(Stmt::Let {
            name: acc.clone(),
            mutable: true,
            annotate: is_const(&init) || self.rng.chance(0.2),
            init,
        });
        self.declare_hidden(&acc, true);
        match self.rng.weighted(&[5, 3, 2, 3, 3]) {
            0 => self.matrix_site(&s, &acc, recurrence, out),
            1 => self.offset_site(&s, &acc, recurrence, out),
            2 => self.triangle_site(&s, &acc, recurrence, out),
            3 => self.buffer_site(&s, &acc, recurrence, out),
            _ => self.column_site(&s, &acc, recurrence, out),
        }
        let a = FExpr::Var(acc);
        match self.rng.below(5) {
            0 | 1 => a,
            2 => FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), bx(a)),
            3 => FExpr::Call1(Fn1::Tanh, bx(a)),
            _ => {
                let x = self.var_leaf();
                let x = self.bounded(x);
                FExpr::Bin(BinOp::Mul, bx(a), bx(x))
            }
        }
    }

    /// `let cols = 2; let rows = s.len() / cols;`, `let rows = 2; let cols = s.len() / rows;`
    /// or both as literals: the names of rows and columns and their values (`rows * cols <=
    /// s.len()`; either may be 0, which leaves the loops empty).
    fn row_shape(&mut self, s: &Arr, out: &mut Vec<Stmt>) -> (String, String, usize, usize) {
        let len = s.len;
        let k = self.rng.range(1, 3);
        let len_of_s = || IExpr::Len(s.name.clone());
        match self.rng.below(3) {
            0 => {
                let cols = self.let_int(&["cols", "n", "width"], IExpr::Lit(k), k, out);
                let init = IExpr::Div(bx(len_of_s()), bx(IExpr::Var(cols.clone())));
                let rows = self.let_int(&["rows", "height"], init, len / k, out);
                (rows, cols, len / k, k)
            }
            1 => {
                let rows = self.let_int(&["rows", "height"], IExpr::Lit(k), k, out);
                let init = IExpr::Div(bx(len_of_s()), bx(IExpr::Var(rows.clone())));
                let cols = self.let_int(&["cols", "n", "width"], init, len / k, out);
                (rows, cols, k, len / k)
            }
            _ => {
                let rows = self.let_int(&["rows", "height"], IExpr::Lit(len / k), len / k, out);
                let cols = self.let_int(&["cols", "n", "width"], IExpr::Lit(k), k, out);
                (rows, cols, len / k, k)
            }
        }
    }

    /// A factor for a load in a row loop over `j`: a scalar input, an element of `q`, the
    /// index as a float, or a random bounded operand.
    fn row_term(&mut self, j: &str) -> FExpr {
        let q = self
            .arrs()
            .into_iter()
            .find(|a| a.name == "q" && !a.mutable);
        let params: Vec<String> = self.scopes[0]
            .floats
            .iter()
            .filter(|v| !v.hidden)
            .map(|v| v.name.clone())
            .collect();
        let w = [
            if params.is_empty() { 0 } else { 4 },
            if q.is_some() { 2 } else { 0 },
            1,
            2,
        ];
        match self.rng.weighted(&w) {
            0 => {
                let p = self.rng.pick(&params).clone();
                self.read_named(&p);
                FExpr::Var(p)
            }
            1 => {
                let q = q.expect("the slice `q`").name;
                FExpr::Index(
                    q.clone(),
                    IExpr::Rem(bx(IExpr::Var(j.to_string())), bx(IExpr::Len(q))),
                )
            }
            2 => FExpr::Bin(
                BinOp::Add,
                bx(FExpr::Lit(0.5)),
                bx(FExpr::Bin(
                    BinOp::Mul,
                    bx(FExpr::Lit(0.25)),
                    bx(FExpr::Cast(IExpr::Var(j.to_string()))),
                )),
            ),
            _ => {
                let e = self.operand(1);
                self.bounded(e)
            }
        }
    }

    /// The update of `t` in an inner row loop from `load`: a sum of products, of `tanh`s, of
    /// squares, or a recurrence.
    fn row_update(&mut self, t: &str, load: FExpr, j: &str) -> Stmt {
        let term = self.row_term(j);
        let tv = || bx(FExpr::Var(t.to_string()));
        let prod = FExpr::Bin(BinOp::Mul, bx(load.clone()), bx(term));
        let (op, value) = match self.rng.below(6) {
            0 | 1 => (AssignOp::Compound(BinOp::Add), prod),
            2 => (
                AssignOp::Set,
                FExpr::Bin(BinOp::Add, tv(), bx(FExpr::Call1(Fn1::Tanh, bx(prod)))),
            ),
            3 => (
                AssignOp::Compound(BinOp::Sub),
                FExpr::Bin(BinOp::Mul, bx(load.clone()), bx(load)),
            ),
            4 => (AssignOp::Compound(BinOp::Add), load),
            _ => (
                AssignOp::Set,
                FExpr::Bin(
                    BinOp::Add,
                    bx(FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), tv())),
                    bx(prod),
                ),
            ),
        };
        Stmt::Assign {
            place: Place::Var(t.to_string()),
            op,
            value,
        }
    }

    /// What a row contributes: its sum, `tanh`, square.
    fn row_use(&mut self, t: &str) -> FExpr {
        let t = FExpr::Var(t.to_string());
        match self.rng.below(4) {
            0 => t,
            1 => FExpr::Call1(Fn1::Tanh, bx(t)),
            2 => FExpr::Bin(BinOp::Mul, bx(t.clone()), bx(t)),
            _ => FExpr::Bin(
                BinOp::Mul,
                bx(FExpr::Call1(Fn1::Sin, bx(t))),
                bx(FExpr::Lit(1.5)),
            ),
        }
    }

    /// `acc += u`, `acc -= u`, `acc = acc + u` (a sum over rows), or a recurrence over rows:
    /// `acc = 0.5 * acc + u`, `acc = (acc + u).tanh()`, `acc = acc * 0.5 + u.tanh()`.
    fn row_acc(&mut self, acc: &str, u: FExpr, recurrence: bool) -> Stmt {
        self.acc_step(acc, u, recurrence, Fn1::Tanh)
    }

    /// [`Gen::row_acc`], with `g` in place of the recurrence's `(acc + u).tanh()`.
    fn acc_step(&mut self, acc: &str, u: FExpr, recurrence: bool, g: Fn1) -> Stmt {
        let a = || bx(FExpr::Var(acc.to_string()));
        let (op, value) = if recurrence {
            let v = match self.rng.below(3) {
                0 => FExpr::Bin(
                    BinOp::Add,
                    bx(FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), a())),
                    bx(u),
                ),
                1 => FExpr::Call1(g, bx(FExpr::Bin(BinOp::Add, a(), bx(u)))),
                _ => FExpr::Bin(
                    BinOp::Add,
                    bx(FExpr::Bin(BinOp::Mul, a(), bx(FExpr::Lit(0.5)))),
                    bx(FExpr::Call1(Fn1::Tanh, bx(u))),
                ),
            };
            (AssignOp::Set, v)
        } else {
            match self.rng.below(3) {
                0 => (AssignOp::Compound(BinOp::Add), u),
                1 => (AssignOp::Compound(BinOp::Sub), u),
                _ => (AssignOp::Set, FExpr::Bin(BinOp::Add, a(), bx(u))),
            }
        };
        Stmt::Assign {
            place: Place::Var(acc.to_string()),
            op,
            value,
        }
    }

    /// Counts a row loop: one meant to take windows, or a near miss.
    fn count_row(&mut self, near: bool) {
        if near {
            self.row_near += 1;
        } else {
            self.row_loops += 1;
        }
    }

    /// A private per-row accumulator `let mut t: f64 = 0.0;` (pushed to `body`), hidden.
    fn row_private(&mut self, body: &mut Vec<Stmt>) -> String {
        let t = self.fresh_name(&["t", "dot", "row_sum"]);
        body.push(Stmt::Let {
            name: t.clone(),
            mutable: true,
            annotate: true,
            init: FExpr::Lit(0.0),
        });
        self.declare_hidden(&t, true);
        t
    }

    /// `for col in 0..cols { let mut t = init; for r in 0..rows { t ⊕= .. s[r * cols + col] ..
    /// } acc = .. t ..; }`: a sum down a column of `s`, which `#[gradient]` runs for every `col`
    /// at once with `col` innermost (`ad-macro/src/interchange.rs`). The reset is `0.0`, `0.5` or
    /// an expression of `s[col]`; the inner range is `0..rows`, `1..rows` (reading the row above
    /// too) or empty; the updates are [`Gen::row_update`]'s (some, like `t = 0.5 * t + ..`,
    /// are near misses the rewrite leaves as written), one or two of them.
    fn column_site(&mut self, s: &Arr, acc: &str, recurrence: bool, out: &mut Vec<Stmt>) {
        let (rows, cols, nr, nc) = self.row_shape(s, out);
        self.count_row(false);
        let var = |n: &str| IExpr::Var(n.to_string());
        let c = self.fresh_int_from(&["col", "column"]);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&c, 0, nc.max(1) - 1);
        let t = self.fresh_name(&["t", "dot", "col_sum"]);
        let init = match self.rng.below(3) {
            0 => FExpr::Lit(0.0),
            1 => FExpr::Lit(0.5),
            _ => FExpr::Bin(
                BinOp::Mul,
                bx(FExpr::Lit(0.5)),
                bx(FExpr::Index(s.name.clone(), var(&c))),
            ),
        };
        let mut body = vec![Stmt::Let {
            name: t.clone(),
            mutable: true,
            annotate: true,
            init,
        }];
        self.declare_hidden(&t, true);
        let r = self.fresh_int_from(&["r", "row"]);
        // 0 from 0, 1 from 1 (reads row r - 1 too), 2 empty.
        let shape = self.rng.weighted(&[5, 2, 1]);
        let lo = usize::from(shape == 1);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&r, lo, nr.max(lo + 1) - 1);
        let at = |row: IExpr| IExpr::Add(bx(IExpr::Mul(bx(row), bx(var(&cols)))), bx(var(&c)));
        let mut inner = Vec::new();
        let updates = if self.rng.chance(0.3) { 2 } else { 1 };
        for k in 0..updates {
            let row = if shape == 1 && k == 1 {
                IExpr::Sub(bx(var(&r)), bx(IExpr::Lit(1)))
            } else {
                var(&r)
            };
            let load = FExpr::Index(s.name.clone(), at(row));
            inner.push(self.row_update(&t, load, &r));
        }
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        let (start, end) = match shape {
            2 => (var(&rows), var(&rows)),
            _ => (IExpr::Lit(lo), var(&rows)),
        };
        body.push(Stmt::For {
            var: r,
            start,
            end,
            rev: false,
            body: Block {
                stmts: inner,
                tail: None,
            },
        });
        let u = self.row_use(&t);
        body.push(self.row_acc(acc, u, recurrence));
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var: c,
            start: IExpr::Lit(0),
            end: var(&cols),
            rev: false,
            body: Block {
                stmts: body,
                tail: None,
            },
        });
    }

    /// `for r in 0..rows { [let mut t = 0.0;] for j in 0..cols { .. s[r * cols + j] .. } acc
    /// = .. t ..; }`: inner ranges plain, reversed, from 1 (with a counter `let l = r * cols +
    /// (j - 1)`) or empty (`cols..cols`, `r..r`); indices `r * cols + j`, `j + r * cols`, or
    /// a counter set first. Near misses: a counter incremented in the body, the access under
    /// `if j < cols` in `0..cols + 1`, a `break`, a second access `s[j]`.
    fn matrix_site(&mut self, s: &Arr, acc: &str, recurrence: bool, out: &mut Vec<Stmt>) {
        let (rows, cols, nr, nc) = self.row_shape(s, out);
        let near = self.rng.chance(ROW_NEAR_MISS).then(|| self.rng.below(4));
        self.count_row(near.is_some());
        let r = self.fresh_int_from(&["r", "row"]);
        let private = self.rng.chance(0.6);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&r, 0, nr.max(1) - 1);
        let mut body = Vec::new();
        if self.rng.chance(0.15) {
            body.extend(self.stmt());
        }
        let t = if private {
            self.row_private(&mut body)
        } else {
            acc.to_string()
        };
        let j = self.fresh_int_from(&["j", "col"]);
        // 0 plain, 1 reversed, 2 from 1 with a counter, 3 empty.
        let shape = if near.is_some() {
            self.rng.weighted(&[4, 1, 0, 0])
        } else {
            self.rng.weighted(&[5, 2, 2, 2])
        };
        let lo = usize::from(shape == 2);
        let var = |n: &str| IExpr::Var(n.to_string());
        let (start, end, jhi) = match (near, shape) {
            (Some(1), _) => (
                IExpr::Lit(0),
                IExpr::Add(bx(var(&cols)), bx(IExpr::Lit(1))),
                nc,
            ),
            (_, 3) => {
                let at = if self.rng.chance(0.5) {
                    var(&cols)
                } else {
                    var(&r)
                };
                (at.clone(), at, nc.max(1) - 1)
            }
            _ => (IExpr::Lit(lo), var(&cols), nc.max(lo + 1) - 1),
        };
        let mut before = Vec::new();
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&j, lo, jhi);
        let row_start = IExpr::Mul(bx(var(&r)), bx(var(&cols)));
        let flat = if shape == 2 {
            IExpr::Add(
                bx(row_start.clone()),
                bx(IExpr::Sub(bx(var(&j)), bx(IExpr::Lit(1)))),
            )
        } else if self.rng.chance(0.65) {
            IExpr::Add(bx(row_start.clone()), bx(var(&j)))
        } else {
            IExpr::Add(bx(var(&j)), bx(row_start.clone()))
        };
        let mut inner = Vec::new();
        let idx = if near == Some(0) {
            // `let mut l: usize = r * cols; for j in .. { .. s[l] ..; l += 1; }`
            let l = self.fresh_int_from(&["l", "at", "idx"]);
            before.push(Stmt::LetIdx {
                name: l.clone(),
                init: row_start,
            });
            var(&l)
        } else if shape == 2 || self.rng.chance(0.3) {
            let l = self.fresh_int_from(&["l", "at", "idx"]);
            inner.push(Stmt::LetInt {
                name: l.clone(),
                init: flat,
                annotate: self.rng.chance(0.3),
            });
            var(&l)
        } else {
            flat
        };
        let load = FExpr::Index(s.name.clone(), idx.clone());
        let mut upd = self.row_update(&t, load, &j);
        if near == Some(3) {
            // A second access to the same memory: `.. * s[j]`.
            if let Stmt::Assign { value, .. } = &mut upd {
                let second = FExpr::Index(s.name.clone(), var(&j));
                *value = FExpr::Bin(BinOp::Mul, bx(value.clone()), bx(second));
            }
        }
        match near {
            Some(1) => inner.push(Stmt::If {
                arms: vec![(
                    Cond::ICmp(CmpOp::Lt, var(&j), var(&cols)),
                    Block {
                        stmts: vec![upd],
                        tail: None,
                    },
                )],
                els: None,
            }),
            _ => inner.push(upd),
        }
        if near == Some(2) {
            let cond = self.row_break_cond(&j, lo, jhi, &t);
            inner.push(Stmt::If {
                arms: vec![(
                    cond,
                    Block {
                        stmts: vec![Stmt::Break],
                        tail: None,
                    },
                )],
                els: None,
            });
        }
        if let (Some(0), IExpr::Var(l)) = (near, &idx) {
            inner.push(Stmt::IncIdx { name: l.clone() });
        }
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        body.extend(before);
        body.push(Stmt::For {
            var: j,
            start,
            end,
            rev: shape == 1,
            body: Block {
                stmts: inner,
                tail: None,
            },
        });
        if private {
            let u = self.row_use(&t);
            body.push(self.row_acc(acc, u, recurrence));
        }
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var: r,
            start: IExpr::Lit(0),
            end: var(&rows),
            rev: self.feat.rev_ranges && self.rng.chance(0.2),
            body: Block {
                stmts: body,
                tail: None,
            },
        });
    }

    /// The condition of a `break` in a row loop over `j` in `lo..=hi`: `j >= k`, or the
    /// accumulator `t` against a bound.
    fn row_break_cond(&mut self, j: &str, lo: usize, hi: usize, t: &str) -> Cond {
        if self.rng.chance(0.6) {
            let k = self.rng.range(lo, hi.max(lo));
            let op = if k == 0 { CmpOp::Gt } else { CmpOp::Ge };
            Cond::ICmp(op, IExpr::Var(j.to_string()), IExpr::Lit(k))
        } else {
            let k = *self.rng.pick(&[1.0, 2.0, -0.5]);
            Cond::Cmp(CmpOp::Gt, FExpr::Var(t.to_string()), FExpr::Lit(k))
        }
    }

    /// `s[b + j]` (or `s[j + b]`): a fixed base `let b = 1; let width = s.len() - b;`, or the
    /// index of an outer loop (a sliding window, a convolution with `q`). Near misses: a base
    /// that changes in the loop (`b += 1`), the access under `if b + j < s.len()` in
    /// `0..s.len()`, a `break`; and sometimes an empty range `b..b`.
    fn offset_site(&mut self, s: &Arr, acc: &str, recurrence: bool, out: &mut Vec<Stmt>) {
        let len = s.len;
        let var = |n: &str| IExpr::Var(n.to_string());
        let near = self.rng.chance(ROW_NEAR_MISS).then(|| self.rng.below(3));
        self.count_row(near.is_some());
        let commute = self.rng.chance(0.3);
        let at = |b: &str, j: &str| {
            if commute {
                IExpr::Add(bx(var(j)), bx(var(b)))
            } else {
                IExpr::Add(bx(var(b)), bx(var(j)))
            }
        };
        if near.is_none() && self.rng.chance(0.5) {
            // for b in 0..s.len() - width + 1 { let mut t = 0.0; for j in 0..width { t +=
            // s[b + j] * q[j]; } acc = .. t ..; }
            let q = self
                .arrs()
                .into_iter()
                .find(|a| a.name == "q" && !a.mutable && a.len <= len);
            let (width, w, kernel) = match q {
                Some(q) if self.rng.chance(0.7) => (IExpr::Len(q.name.clone()), q.len, Some(q)),
                _ => {
                    let w = self.rng.range(1, len.min(3));
                    let name = self.let_int(&["width", "kw"], IExpr::Lit(w), w, out);
                    (var(&name), w, None)
                }
            };
            let b = self.fresh_int_from(&["b", "off", "base"]);
            let end = IExpr::Add(
                bx(IExpr::Sub(
                    bx(IExpr::Len(s.name.clone())),
                    bx(width.clone()),
                )),
                bx(IExpr::Lit(1)),
            );
            self.loop_depth += 1;
            self.nesting += 1;
            self.push_with_int(&b, 0, len - w);
            let mut body = Vec::new();
            let t = self.row_private(&mut body);
            let j = self.fresh_int_from(&["j", "col"]);
            self.loop_depth += 1;
            self.nesting += 1;
            self.push_with_int(&j, 0, w - 1);
            let load = FExpr::Index(s.name.clone(), at(&b, &j));
            let upd = match kernel {
                Some(q) if self.rng.chance(0.7) => Stmt::Assign {
                    place: Place::Var(t.clone()),
                    op: AssignOp::Compound(BinOp::Add),
                    value: FExpr::Bin(BinOp::Mul, bx(load), bx(FExpr::Index(q.name, var(&j)))),
                },
                _ => self.row_update(&t, load, &j),
            };
            self.pop();
            self.nesting -= 1;
            self.loop_depth -= 1;
            body.push(Stmt::For {
                var: j,
                start: IExpr::Lit(0),
                end: width,
                rev: self.feat.rev_ranges && self.rng.chance(0.2),
                body: Block {
                    stmts: vec![upd],
                    tail: None,
                },
            });
            let u = self.row_use(&t);
            body.push(self.row_acc(acc, u, recurrence));
            self.pop();
            self.nesting -= 1;
            self.loop_depth -= 1;
            out.push(Stmt::For {
                var: b,
                start: IExpr::Lit(0),
                end,
                rev: false,
                body: Block {
                    stmts: body,
                    tail: None,
                },
            });
            return;
        }
        let j = self.fresh_int_from(&["j", "col"]);
        match near {
            Some(0) => {
                // let mut b: usize = k; for j in 0..n { acc += s[b + j]; b += 1; }: the
                // index steps by two, `k + 2 * (n - 1) < s.len()`.
                let k = self.rng.range(0, (len - 1) / 2);
                let n = (len - 1 - k) / 2 + 1;
                let b = self.fresh_int_from(&["b", "off", "base"]);
                out.push(Stmt::LetIdx {
                    name: b.clone(),
                    init: IExpr::Lit(k),
                });
                self.loop_depth += 1;
                self.nesting += 1;
                self.push_with_int(&j, 0, n - 1);
                let load = FExpr::Index(s.name.clone(), at(&b, &j));
                let upd = self.row_update(acc, load, &j);
                self.pop();
                self.nesting -= 1;
                self.loop_depth -= 1;
                out.push(Stmt::For {
                    var: j,
                    start: IExpr::Lit(0),
                    end: IExpr::Lit(n),
                    rev: false,
                    body: Block {
                        stmts: vec![upd, Stmt::IncIdx { name: b }],
                        tail: None,
                    },
                });
            }
            _ => {
                let k = self.rng.range(0, len - 1);
                let b = self.let_int(&["b", "off", "base"], IExpr::Lit(k), k, out);
                let (start, end, hi) = if near == Some(1) {
                    (IExpr::Lit(0), IExpr::Len(s.name.clone()), len - 1)
                } else if self.rng.chance(0.5) {
                    let init = IExpr::Sub(bx(IExpr::Len(s.name.clone())), bx(var(&b)));
                    let w = self.let_int(&["width", "kw"], init, len - k, out);
                    (IExpr::Lit(0), var(&w), len - k - 1)
                } else {
                    let w = self.rng.range(1, len - k);
                    (IExpr::Lit(0), IExpr::Lit(w), w - 1)
                };
                // Sometimes empty: `b..b`.
                let (start, end) = if near.is_none() && self.rng.chance(0.1) {
                    (var(&b), var(&b))
                } else {
                    (start, end)
                };
                self.loop_depth += 1;
                self.nesting += 1;
                self.push_with_int(&j, 0, hi);
                let load = FExpr::Index(s.name.clone(), at(&b, &j));
                let upd = self.row_update(acc, load, &j);
                let mut stmts = Vec::new();
                if near == Some(1) {
                    let bound = IExpr::Add(bx(var(&b)), bx(var(&j)));
                    stmts.push(Stmt::If {
                        arms: vec![(
                            Cond::ICmp(CmpOp::Lt, bound, IExpr::Len(s.name.clone())),
                            Block {
                                stmts: vec![upd],
                                tail: None,
                            },
                        )],
                        els: None,
                    });
                } else {
                    stmts.push(upd);
                }
                if near == Some(2) {
                    let cond = self.row_break_cond(&j, 0, hi, acc);
                    stmts.push(Stmt::If {
                        arms: vec![(
                            cond,
                            Block {
                                stmts: vec![Stmt::Break],
                                tail: None,
                            },
                        )],
                        els: None,
                    });
                }
                self.pop();
                self.nesting -= 1;
                self.loop_depth -= 1;
                out.push(Stmt::For {
                    var: j,
                    start,
                    end,
                    rev: self.feat.rev_ranges && self.rng.chance(0.2),
                    body: Block { stmts, tail: None },
                });
            }
        }
    }

    /// A packed triangle: `for j in 0..d { for r in j + 1..d { let k = j * (2 * d - j - 1) /
    /// 2 + (r - j - 1); .. s[k] .. } }` (`d * (d - 1) / 2 <= s.len()`), or with the diagonal,
    /// `for r in 0..d { for j in 0..r + 1 { let k = r * (r + 1) / 2 + j; .. } }`; sometimes
    /// the index written in place (a near miss: not of the form `a + j`).
    fn triangle_site(&mut self, s: &Arr, acc: &str, recurrence: bool, out: &mut Vec<Stmt>) {
        let len = s.len;
        let var = |n: &str| IExpr::Var(n.to_string());
        let lit = IExpr::Lit;
        let lower = len >= 3 && self.rng.chance(0.4);
        let dmax = (2..)
            .take_while(|d| if lower { d * (d + 1) / 2 } else { d * (d - 1) / 2 } <= len)
            .last()
            .unwrap_or(1);
        let d = self.rng.range(dmax.saturating_sub(1).max(2), dmax.max(2));
        let d = if lower { d.min(dmax) } else { d };
        let dn = self.let_int(&["d", "dim"], lit(d), d, out);
        let inline = self.rng.chance(0.25);
        self.count_row(inline);
        let outer = self.fresh_int_from(&["j", "p"]);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&outer, 0, d - 1);
        let mut body = Vec::new();
        let private = self.rng.chance(0.7);
        let t = if private {
            self.row_private(&mut body)
        } else {
            acc.to_string()
        };
        let inner = self.fresh_int_from(&["r", "row"]);
        let (start, end, lo) = if lower {
            (lit(0), IExpr::Add(bx(var(&outer)), bx(lit(1))), 0)
        } else {
            (IExpr::Add(bx(var(&outer)), bx(lit(1))), var(&dn), 1)
        };
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&inner, lo, d - 1);
        let k = if lower {
            // r * (r + 1) / 2 + j, with `outer` as r
            IExpr::Add(
                bx(IExpr::Div(
                    bx(IExpr::Mul(
                        bx(var(&outer)),
                        bx(IExpr::Add(bx(var(&outer)), bx(lit(1)))),
                    )),
                    bx(lit(2)),
                )),
                bx(var(&inner)),
            )
        } else {
            // j * (2 * d - j - 1) / 2 + (r - j - 1)
            IExpr::Add(
                bx(IExpr::Div(
                    bx(IExpr::Mul(
                        bx(var(&outer)),
                        bx(IExpr::Sub(
                            bx(IExpr::Sub(
                                bx(IExpr::Mul(bx(lit(2)), bx(var(&dn)))),
                                bx(var(&outer)),
                            )),
                            bx(lit(1)),
                        )),
                    )),
                    bx(lit(2)),
                )),
                bx(IExpr::Sub(
                    bx(IExpr::Sub(bx(var(&inner)), bx(var(&outer)))),
                    bx(lit(1)),
                )),
            )
        };
        let mut stmts = Vec::new();
        let idx = if inline {
            k
        } else {
            let l = self.fresh_int_from(&["k", "l", "at"]);
            stmts.push(Stmt::LetInt {
                name: l.clone(),
                init: k,
                annotate: self.rng.chance(0.3),
            });
            var(&l)
        };
        let load = FExpr::Index(s.name.clone(), idx);
        stmts.push(self.row_update(&t, load, &inner));
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        body.push(Stmt::For {
            var: inner,
            start,
            end,
            rev: self.feat.rev_ranges && self.rng.chance(0.2),
            body: Block { stmts, tail: None },
        });
        if private {
            let u = self.row_use(&t);
            body.push(self.row_acc(acc, u, recurrence));
        }
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var: outer,
            start: lit(0),
            end: var(&dn),
            rev: false,
            body: Block {
                stmts: body,
                tail: None,
            },
        });
    }

    /// Local buffers: one declared at the top level (`vec![0.0; s.len()]`, `[0.0; n]`), filled
    /// at the loop index from `s`, updated in place at `r * cols + j` and read back (at `i` or
    /// at `r * cols + j`); or one declared in the outer loop (`vec![0.0; cols]`), which must
    /// not be windowed, filled from a row of `s` and read back.
    fn buffer_site(&mut self, s: &Arr, acc: &str, recurrence: bool, out: &mut Vec<Stmt>) {
        let (rows, cols, nr, nc) = self.row_shape(s, out);
        let var = |n: &str| IExpr::Var(n.to_string());
        let lit = IExpr::Lit;
        let at = |r: &str, c: &str, j: &str| {
            IExpr::Add(bx(IExpr::Mul(bx(var(r)), bx(var(c)))), bx(var(j)))
        };
        if self.rng.chance(0.6) {
            let z = self.selection_buffer(s, out);
            out.push(self.selection_fill(&z, s, None));
            self.count_row(false);
            // for r in 0..rows { for j in 0..cols { z[r * cols + j] = .. z[r * cols + j] .. } }
            let r = self.fresh_int_from(&["r", "row"]);
            self.loop_depth += 1;
            self.nesting += 1;
            self.push_with_int(&r, 0, nr.max(1) - 1);
            let j = self.fresh_int_from(&["j", "col"]);
            self.loop_depth += 1;
            self.nesting += 1;
            self.push_with_int(&j, 0, nc.max(1) - 1);
            let idx = at(&r, &cols, &j);
            let place = Place::Elem(z.name.clone(), idx.clone());
            let here = FExpr::Index(z.name.clone(), idx.clone());
            let term = self.row_term(&j);
            let (op, value) = match self.rng.below(3) {
                0 => (
                    AssignOp::Set,
                    FExpr::Bin(BinOp::Mul, bx(FExpr::Call1(Fn1::Tanh, bx(here))), bx(term)),
                ),
                1 => (
                    AssignOp::Compound(BinOp::Add),
                    FExpr::Bin(BinOp::Mul, bx(FExpr::Index(s.name.clone(), idx)), bx(term)),
                ),
                _ => (
                    AssignOp::Compound(BinOp::Mul),
                    FExpr::Call1(Fn1::Tanh, bx(term)),
                ),
            };
            self.pop();
            self.nesting -= 1;
            self.loop_depth -= 1;
            self.pop();
            self.nesting -= 1;
            self.loop_depth -= 1;
            self.count_row(false);
            out.push(Stmt::For {
                var: r.clone(),
                start: lit(0),
                end: var(&rows),
                rev: false,
                body: Block {
                    stmts: vec![Stmt::For {
                        var: j.clone(),
                        start: lit(0),
                        end: var(&cols),
                        rev: self.feat.rev_ranges && self.rng.chance(0.2),
                        body: Block {
                            stmts: vec![Stmt::Assign { place, op, value }],
                            tail: None,
                        },
                    }],
                    tail: None,
                },
            });
            // Read back: at the loop index, or by rows.
            self.count_row(false);
            if self.rng.chance(0.5) {
                let i = self.fresh_int_from(&["i", "e"]);
                self.loop_depth += 1;
                self.nesting += 1;
                self.push_with_int(&i, 0, z.len - 1);
                let load = FExpr::Index(z.name.clone(), var(&i));
                let upd = self.row_update(acc, load, &i);
                self.pop();
                self.nesting -= 1;
                self.loop_depth -= 1;
                out.push(Stmt::For {
                    var: i,
                    start: lit(0),
                    end: IExpr::Len(z.name.clone()),
                    rev: self.feat.rev_ranges && self.rng.chance(0.2),
                    body: Block {
                        stmts: vec![upd],
                        tail: None,
                    },
                });
            } else {
                self.loop_depth += 1;
                self.nesting += 1;
                self.push_with_int(&r, 0, nr.max(1) - 1);
                let mut body = Vec::new();
                let t = self.row_private(&mut body);
                self.loop_depth += 1;
                self.nesting += 1;
                self.push_with_int(&j, 0, nc.max(1) - 1);
                let load = FExpr::Index(z.name.clone(), at(&r, &cols, &j));
                let upd = self.row_update(&t, load, &j);
                self.pop();
                self.nesting -= 1;
                self.loop_depth -= 1;
                body.push(Stmt::For {
                    var: j,
                    start: lit(0),
                    end: var(&cols),
                    rev: false,
                    body: Block {
                        stmts: vec![upd],
                        tail: None,
                    },
                });
                let u = self.row_use(&t);
                body.push(self.row_acc(acc, u, recurrence));
                self.pop();
                self.nesting -= 1;
                self.loop_depth -= 1;
                out.push(Stmt::For {
                    var: r,
                    start: lit(0),
                    end: var(&rows),
                    rev: false,
                    body: Block {
                        stmts: body,
                        tail: None,
                    },
                });
            }
            self.set_hidden(&z.name, true, false);
            return;
        }
        // for r in 0..rows { let mut t = vec![0.0; cols]; for j in 0..cols { t[j] = s[r *
        // cols + j] * e; } for j in 0..cols { u += t[j] * t[cols - 1 - j]; } acc = .. u ..; }
        self.count_row(true);
        self.count_row(false);
        let r = self.fresh_int_from(&["r", "row"]);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&r, 0, nr.max(1) - 1);
        let mut body = Vec::new();
        let h = self.fresh_arr_name();
        let vec = if nc == 0 || self.rng.chance(0.6) {
            Some(var(&cols))
        } else {
            None
        };
        body.push(Stmt::LetBuf {
            name: h.clone(),
            len: nc,
            annotate: self.rng.chance(0.4),
            bare: false,
            vec,
        });
        let j = self.fresh_int_from(&["j", "col"]);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&j, 0, nc.max(1) - 1);
        let term = self.row_term(&j);
        let load = FExpr::Index(s.name.clone(), at(&r, &cols, &j));
        let fill = Stmt::Assign {
            place: Place::Elem(h.clone(), var(&j)),
            op: AssignOp::Set,
            value: FExpr::Bin(BinOp::Mul, bx(load), bx(term)),
        };
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        body.push(Stmt::For {
            var: j.clone(),
            start: lit(0),
            end: var(&cols),
            rev: false,
            body: Block {
                stmts: vec![fill],
                tail: None,
            },
        });
        let u = self.row_private(&mut body);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&j, 0, nc.max(1) - 1);
        let mirror = IExpr::Sub(bx(IExpr::Sub(bx(var(&cols)), bx(lit(1)))), bx(var(&j)));
        let value = FExpr::Bin(
            BinOp::Mul,
            bx(FExpr::Index(h.clone(), var(&j))),
            bx(FExpr::Index(h.clone(), mirror)),
        );
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        body.push(Stmt::For {
            var: j,
            start: lit(0),
            end: var(&cols),
            rev: self.feat.rev_ranges && self.rng.chance(0.2),
            body: Block {
                stmts: vec![Stmt::Assign {
                    place: Place::Var(u.clone()),
                    op: AssignOp::Compound(BinOp::Add),
                    value,
                }],
                tail: None,
            },
        });
        let v = self.row_use(&u);
        body.push(self.row_acc(acc, v, recurrence));
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var: r,
            start: lit(0),
            end: var(&rows),
            rev: self.feat.rev_ranges && self.rng.chance(0.2),
            body: Block {
                stmts: body,
                tail: None,
            },
        });
    }

    // ---------------------------------------------------------------------------------------
    // Jammed loops.
    // ---------------------------------------------------------------------------------------

    /// Whether runs of jammable loops may be generated (they need loops and buffers too).
    fn jam_features(&self) -> bool {
        self.feat.jammed_loops && self.feat.loops && self.feat.buffers
    }

    /// The body of a helper taking the slice `q`: a random block, and a sum over `q` that its
    /// value uses (`qsum += q[qi] * q[qi]`, ..).
    fn slice_helper_body(&mut self, n: usize) -> Block {
        let mut body = self.block(n, true);
        let (acc, i) = ("qsum".to_string(), "qi".to_string());
        let qi = || bx(FExpr::Index("q".to_string(), IExpr::Var("qi".to_string())));
        let term = match self.rng.below(3) {
            0 => FExpr::Bin(BinOp::Mul, qi(), qi()),
            1 => FExpr::Bin(
                BinOp::Mul,
                qi(),
                bx(FExpr::Bin(
                    BinOp::Add,
                    bx(FExpr::Lit(0.5)),
                    bx(FExpr::Bin(
                        BinOp::Mul,
                        bx(FExpr::Lit(0.25)),
                        bx(FExpr::Cast(IExpr::Var(i.clone()))),
                    )),
                )),
            ),
            _ => FExpr::Call1(Fn1::Sin, qi()),
        };
        body.stmts.push(Stmt::Let {
            name: acc.clone(),
            mutable: true,
            annotate: true,
            init: FExpr::Lit(0.0),
        });
        body.stmts.push(Stmt::For {
            var: i,
            start: IExpr::Lit(0),
            end: IExpr::Len("q".to_string()),
            rev: false,
            body: Block {
                stmts: vec![Stmt::Assign {
                    place: Place::Var(acc.clone()),
                    op: AssignOp::Compound(BinOp::Add),
                    value: term,
                }],
                tail: None,
            },
        });
        let tail = body.tail.take().expect("a function's tail");
        body.tail = Some(FExpr::Bin(
            BinOp::Add,
            bx(tail),
            bx(FExpr::Bin(
                BinOp::Mul,
                bx(FExpr::Lit(0.5)),
                bx(FExpr::Call1(Fn1::Tanh, bx(FExpr::Var(acc)))),
            )),
        ));
        body
    }

    /// The body of an entry function built around one or two runs of jammable loops
    /// ([`Gen::jam_run`]), sometimes inside an outer loop, often after a buffer filled from `s`
    /// that a loop of the run may overwrite; it ends in a value that uses their results, and
    /// often a random tail.
    fn jam_body(&mut self) -> Block {
        self.push();
        let mut stmts = Vec::new();
        if self.rng.chance(0.3) {
            stmts.extend(self.stmt());
        }
        let s = self
            .arrs()
            .into_iter()
            .find(|a| a.name == "s" && !a.mutable)
            .expect("a jam entry has the slice `s`");
        if self.rng.chance(0.5) {
            self.jam_input_buffer(&s, &mut stmts);
        }
        let n = if self.rng.chance(0.35) { 2 } else { 1 };
        let mut value: Option<FExpr> = None;
        for _ in 0..n {
            let u = if self.rng.chance(0.25) {
                self.jam_outer(&mut stmts)
            } else {
                self.jam_run(&mut stmts)
            };
            value = Some(match value {
                None => u,
                Some(v) => {
                    let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub]);
                    FExpr::Bin(op, bx(v), bx(u))
                }
            });
            if self.rng.chance(0.3) {
                stmts.extend(self.stmt());
            }
        }
        let value = value.expect("a run");
        let tail = if self.rng.chance(0.5) {
            let other = self.tail();
            let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub]);
            FExpr::Bin(op, bx(value), bx(other))
        } else {
            value
        };
        self.pop();
        Block {
            stmts,
            tail: Some(tail),
        }
    }

    /// A run of jammable loops as a random statement, and a `let` of a value of its results,
    /// or (in a branch or a loop, where a `let` would be dead at the end of the block) an
    /// update of outer state with it.
    fn jam_stmt(&mut self) -> Vec<Stmt> {
        let mut out = Vec::new();
        let init = self.jam_run(&mut out);
        let outer: Vec<FVar> = self.outer_mutables().collect();
        if self.nesting > 0 && !outer.is_empty() {
            let v = self.rng.pick(&outer).name.clone();
            let value = if self.loop_depth > 0 {
                self.bounded(init)
            } else {
                init
            };
            self.mark_unread(&v, false);
            out.push(Stmt::Assign {
                place: Place::Var(v),
                op: AssignOp::Compound(BinOp::Add),
                value,
            });
            return out;
        }
        let name = self.fresh_float_name();
        self.declare_float(&name, false);
        out.push(Stmt::Let {
            name,
            mutable: false,
            annotate: self.rng.chance(0.2),
            init,
        });
        out
    }

    /// The visible mutable floats declared outside the innermost block.
    fn outer_mutables(&self) -> impl Iterator<Item = FVar> {
        let here: Vec<String> = self
            .scopes
            .last()
            .map(|s| s.floats.iter().map(|v| v.name.clone()).collect())
            .unwrap_or_default();
        self.floats()
            .into_iter()
            .filter(move |v| v.mutable && !here.contains(&v.name))
    }

    /// `let mut h = [0.0; n];` with the length of `s`, filled element by element or by a loop:
    /// a buffer a run may read and then overwrite.
    fn jam_input_buffer(&mut self, s: &Arr, out: &mut Vec<Stmt>) {
        let name = self.fresh_arr_name();
        let len = s.len;
        let vec = match self.rng.below(3) {
            0 => Some(IExpr::Len(s.name.clone())),
            1 => Some(IExpr::Lit(len)),
            _ => None,
        };
        out.push(Stmt::LetBuf {
            name: name.clone(),
            len,
            annotate: self.rng.chance(0.5),
            bare: false,
            vec: vec.clone(),
        });
        if self.feat.loops && self.rng.chance(0.4) {
            let end = if self.rng.chance(0.5) {
                IExpr::Len(s.name.clone())
            } else {
                IExpr::Lit(len)
            };
            out.push(self.fill(&name, len, end));
        } else {
            for k in 0..len {
                let e = self.operand(2);
                let value = self.bounded(e);
                out.push(Stmt::Assign {
                    place: Place::Elem(name.clone(), IExpr::Lit(k)),
                    op: AssignOp::Set,
                    value,
                });
            }
        }
        self.top().arrs.push(Arr {
            name,
            len,
            mutable: true,
            uses: 0,
            hidden: false,
            is_vec: vec.is_some(),
        });
    }

    /// `let mut total = 0.0; for r in 0..n { <run>; total ⊕= .. }`: a run in the body of an
    /// outer loop (its buffers declared there), whose results are summed or chained over `r`.
    fn jam_outer(&mut self, out: &mut Vec<Stmt>) -> FExpr {
        let total = self.fresh_name(&ACC_NAMES);
        let recurrence = self.rng.chance(0.3);
        out.push(Stmt::Let {
            name: total.clone(),
            mutable: true,
            annotate: true,
            init: FExpr::Lit(if recurrence { 0.5 } else { 0.0 }),
        });
        self.declare_hidden(&total, true);
        let r = self.fresh_int_from(&["r", "row", "it"]);
        let n = self.rng.range(1, 3);
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&r, 0, n - 1);
        let mut body = Vec::new();
        let u = self.jam_run(&mut body);
        body.push(self.acc_step(&total, u, recurrence, Fn1::Tanh));
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var: r,
            start: IExpr::Lit(0),
            end: IExpr::Lit(n),
            rev: false,
            body: Block {
                stmts: body,
                tail: None,
            },
        });
        FExpr::Var(total)
    }

    /// A run of 2–4 adjacent `for` loops over one range (`0..n`, `0..s.len()`, `1..n`,
    /// `lo..n`, `0..n - 1` with `let n = s.len() - 1;`, ...), whose bodies share memory only at
    /// one index that steps with the loop's (`a[j]`, `a[j + 1]`, `a[off + j]`), with what it
    /// needs declared before it (pushed to `out`): buffers of the common length, accumulators.
    /// The first loop produces a buffer from the inputs (`a[j] = .. x[j] ..`); each later one
    /// maps earlier buffers to a new one (`b[j] = .. a[j] ..`), accumulates them into a scalar
    /// (`t += .. a[j] ..`), produces another from the inputs, or overwrites a buffer the first
    /// loop read (`y[j] = .. y[j] .. a[j] ..`). Between the loops there may be statements
    /// independent of the loops before (`let mut t: f64 = 0.0;` of a later loop's accumulator,
    /// `let v = e;`, `u = e;` of a scalar no earlier loop touches, read by later ones).
    ///
    /// Near misses ([`JAM_NEAR_MISS`], [`JamMiss`]) differ in one way. Every index is in
    /// bounds by construction, and nothing the run writes is read elsewhere in it, except as
    /// described: random code in the bodies sees neither the run's buffers nor its scalars.
    /// Returns an expression of the results (accumulators, elements of the buffers), which
    /// stay visible (unread) for random code after the run.
    fn jam_run(&mut self, out: &mut Vec<Stmt>) -> FExpr {
        use JamMiss::*;
        let mut near = self
            .rng
            .chance(JAM_NEAR_MISS)
            .then(|| *self.rng.pick(&JAM_MISSES));
        if near == Some(Reversed) && !self.feat.rev_ranges {
            near = Some(Bounds);
        }
        if near.is_some() {
            self.jam_near += 1;
        } else {
            self.jam_runs += 1;
        }
        self.jam_call_miss = false;
        // The common length: that of an array in scope, mostly of two elements or more.
        let arrs = self.arrs();
        let weights: Vec<u32> = arrs
            .iter()
            .map(|a| match (a.len >= 2, a.mutable) {
                (true, false) => 6,
                (true, true) => 4,
                _ => 1,
            })
            .collect();
        let base = arrs[self.rng.weighted(&weights)].clone();
        let len = base.len;
        let n_loops = 2 + self.rng.weighted(&[5, 3, 2]);
        let mut inputs: Vec<Arr> = arrs.into_iter().filter(|a| a.len >= len).collect();
        // A buffer the first loop reads at the shared index and a later loop overwrites.
        let mutables: Vec<String> = inputs
            .iter()
            .filter(|a| a.mutable && a.name != base.name)
            .map(|a| a.name.clone())
            .collect();
        let over = (!mutables.is_empty() && self.rng.chance(0.5))
            .then(|| self.rng.pick(&mutables).clone());
        if let Some(y) = &over {
            inputs.retain(|a| a.name != *y);
        }
        // The index of shared memory.
        let up = self.rng.chance(0.5);
        let key = if len >= 2 && !matches!(near, Some(Neighbour | Mirror)) {
            match self.rng.weighted(&[8, 2, 2]) {
                0 => JamKey::Plain,
                1 => JamKey::PlusOne(self.rng.chance(0.3)),
                _ => {
                    let off = self.let_int(&["off", "base", "b0"], IExpr::Lit(1), 1, out);
                    JamKey::Base(off, self.rng.chance(0.3))
                }
            }
        } else {
            JamKey::Plain
        };
        // The range: `lo..ev`, with `j + 1` (or `j + off`) below `len`.
        let shrink = match &key {
            JamKey::Plain if near == Some(Neighbour) && up => Some(IExpr::Lit(1)),
            JamKey::Plain => None,
            JamKey::PlusOne(_) => Some(IExpr::Lit(1)),
            JamKey::Base(off, _) => Some(IExpr::Var(off.clone())),
        };
        let from_one = shrink.is_none() && self.rng.chance(0.15);
        let lo = usize::from((near == Some(Neighbour) && !up) || from_one);
        let ev = len - usize::from(shrink.is_some());
        let bounds: Vec<String> = inputs
            .iter()
            .filter(|a| a.len == len)
            .map(|a| a.name.clone())
            .collect();
        let shrunk = |e: IExpr| match &shrink {
            None => e,
            Some(k) => IExpr::Sub(bx(e), bx(k.clone())),
        };
        let end = match self.rng.weighted(&[3, 4, 2]) {
            0 => IExpr::Lit(ev),
            1 => shrunk(IExpr::Len(self.rng.pick(&bounds).clone())),
            _ => {
                let init = shrunk(IExpr::Len(self.rng.pick(&bounds).clone()));
                IExpr::Var(self.let_int(&["n", "size", "dim"], init, ev, out))
            }
        };
        let start = if self.rng.chance(0.1) {
            IExpr::Var(self.let_int(&["lo", "first"], IExpr::Lit(lo), lo, out))
        } else {
            IExpr::Lit(lo)
        };

        // What each loop does.
        let mut roles = vec![JamRole::Produce];
        let mut over_used = false;
        for m in 1..n_loops {
            let last = m + 1 == n_loops;
            let role = if over.is_some() && !over_used && (last || self.rng.chance(0.4)) {
                JamRole::Over
            } else {
                match self.rng.weighted(&[5, 3, 1]) {
                    0 => JamRole::Map,
                    1 => JamRole::Acc,
                    _ => JamRole::Produce,
                }
            };
            over_used |= role == JamRole::Over;
            roles.push(role);
        }
        // The loop a near miss changes (never the first for other bounds), and the gap (before
        // loop `gap`) a dependent statement or a declaration goes to.
        let victim = match near {
            Some(Bounds) => self.rng.range(1, n_loops - 1),
            _ => self.rng.below(n_loops),
        };
        let gap = self.rng.range(1, n_loops - 1);
        if near == Some(DeclBetween) && matches!(roles[gap], JamRole::Acc | JamRole::Over) {
            roles[gap] = JamRole::Map;
        }
        let dep = self.rng.below(3);
        let dep = match (near, dep) {
            (Some(Dependent), 2) if roles[gap - 1] != JamRole::Acc => 0,
            (Some(Dependent), d) => d,
            _ => 3,
        };

        // Declarations before the run: the buffers, some accumulators, scalars for statements
        // between the loops. All hidden from random code until the run is over.
        let mut hidden_arrs: Vec<String> = over.iter().cloned().collect();
        let mut hidden_floats: Vec<String> = Vec::new();
        if let Some(y) = &over {
            self.set_hidden(y, true, true);
        }
        let mut dsts: Vec<String> = Vec::new();
        let mut decls: Vec<Option<Stmt>> = Vec::new();
        for (m, role) in roles.iter().enumerate() {
            let (dst, decl) = match role {
                JamRole::Produce | JamRole::Map => {
                    let name = self.fresh_arr_name();
                    let vec = match self.rng.below(4) {
                        0 => Some(IExpr::Lit(len)),
                        1 => Some(IExpr::Len(self.rng.pick(&bounds).clone())),
                        _ => None,
                    };
                    let annotate = self.rng.chance(0.4);
                    let decl = Stmt::LetBuf {
                        name: name.clone(),
                        len,
                        annotate,
                        bare: !annotate && self.rng.chance(0.4),
                        vec: vec.clone(),
                    };
                    self.top().arrs.push(Arr {
                        name: name.clone(),
                        len,
                        mutable: true,
                        uses: 0,
                        hidden: true,
                        is_vec: vec.is_some(),
                    });
                    hidden_arrs.push(name.clone());
                    (name, decl)
                }
                JamRole::Acc => {
                    let name = self.fresh_name(&["t", "acc", "sum", "dot", "norm"]);
                    let init = FExpr::Lit(*self.rng.pick(&[0.0, 0.0, 0.5]));
                    self.declare_hidden(&name, true);
                    hidden_floats.push(name.clone());
                    let decl = Stmt::Let {
                        name: name.clone(),
                        mutable: true,
                        annotate: true,
                        init,
                    };
                    (name, decl)
                }
                JamRole::Over => (over.clone().expect("a buffer to overwrite"), Stmt::Break),
            };
            // Declared before the run, or (accumulators, a near miss's buffer) in the gap
            // before the loop.
            let between = m > 0
                && match role {
                    JamRole::Acc => self.rng.chance(0.4),
                    JamRole::Over => true,
                    _ => near == Some(DeclBetween) && m == gap,
                };
            match (role, between) {
                (JamRole::Over, _) => decls.push(None),
                (_, true) => decls.push(Some(decl)),
                (_, false) => {
                    out.push(decl);
                    decls.push(None);
                }
            }
            dsts.push(dst);
        }
        // A scalar the first loop accumulates and the second reads.
        let carried = (near == Some(Carried)).then(|| {
            let c = self.fresh_name(&["carry", "cy", "run"]);
            out.push(Stmt::Let {
                name: c.clone(),
                mutable: true,
                annotate: true,
                init: FExpr::Lit(0.0),
            });
            self.declare_hidden(&c, true);
            hidden_floats.push(c.clone());
            c
        });
        // A scalar loop `gap - 1` reads and the statement after it assigns.
        let read_then_set = (dep == 1).then(|| {
            let w = self.fresh_float_name();
            let init = self.operand(1);
            let init = self.bounded(init);
            out.push(Stmt::Let {
                name: w.clone(),
                mutable: true,
                annotate: self.rng.chance(0.3),
                init,
            });
            self.declare_hidden(&w, true);
            hidden_floats.push(w.clone());
            w
        });
        // A scalar no loop before `set_at` touches, assigned between the loops.
        let set_at = self.rng.range(1, n_loops - 1);
        let independent = (dep != 1 && self.rng.chance(0.25)).then(|| {
            let u = self.fresh_float_name();
            let init = self.operand(1);
            out.push(Stmt::Let {
                name: u.clone(),
                mutable: true,
                annotate: self.rng.chance(0.3),
                init,
            });
            self.declare_hidden(&u, true);
            u
        });
        // A copy of the range to spell otherwise in the victim (same value, other text).
        let other_end = match &end {
            IExpr::Lit(_) => shrunk(IExpr::Len(self.rng.pick(&bounds).clone())),
            _ => IExpr::Lit(ev),
        };
        let end = if near == Some(LenOfWritten) {
            shrunk(IExpr::Len(dsts[0].clone()))
        } else {
            end
        };

        let mut run = JamRun {
            len,
            inputs,
            over: over.clone(),
            key,
            produced: Vec::new(),
        };
        let mut accs: Vec<String> = Vec::new();
        for m in 0..n_loops {
            if m > 0 {
                if let Some(d) = decls[m].take() {
                    out.push(d);
                }
                if let (Some(u), true) = (&independent, set_at == m) {
                    let e = self.expr(2);
                    let value = self.bounded(e);
                    out.push(Stmt::Assign {
                        place: Place::Var(u.clone()),
                        op: AssignOp::Set,
                        value,
                    });
                    // Later loops may read it.
                    self.set_hidden(u, false, false);
                    self.mark_unread(u, false);
                }
                if self.rng.chance(0.2) {
                    // `let v = e;` of nothing the run writes.
                    out.push(self.let_stmt(None));
                }
                if near == Some(Dependent) && gap == m {
                    self.jam_dependent(dep, &run, &accs, read_then_set.as_deref(), out);
                }
            }
            let (mut lo_m, mut start_m, mut end_m) = (lo, start.clone(), end.clone());
            if near == Some(Bounds) && victim == m {
                if lo == 0 && self.rng.chance(0.5) {
                    (lo_m, start_m) = (1, IExpr::Lit(1));
                } else {
                    end_m = other_end.clone();
                }
            }
            let spec = JamLoop {
                role: roles[m],
                dst: dsts[m].clone(),
                lo: lo_m,
                hi: ev.max(lo_m + 1) - 1,
                neighbour: (near == Some(Neighbour) && m == 1).then_some(up),
                mirror: near == Some(Mirror) && m == 1,
                carried: carried.clone().filter(|_| m <= 1).map(|c| (c, m == 0)),
                reads: read_then_set.clone().filter(|_| m + 1 == gap),
                both: near == Some(BothWrite) && m == victim.max(1),
                brk: near == Some(Break) && m == victim,
            };
            let body = self.jam_loop(&run, &spec);
            out.push(Stmt::For {
                var: body.0,
                start: start_m,
                end: end_m,
                rev: near == Some(Reversed) && m == victim,
                body: Block {
                    stmts: body.1,
                    tail: None,
                },
            });
            match roles[m] {
                JamRole::Produce | JamRole::Map => run.produced.push(dsts[m].clone()),
                JamRole::Acc => accs.push(dsts[m].clone()),
                JamRole::Over => {}
            }
        }

        if self.jam_call_miss && near.is_none() {
            // A call of a buffer an earlier loop wrote: a near miss after all.
            self.jam_runs -= 1;
            self.jam_near += 1;
        }
        // The results, visible again.
        for a in &hidden_arrs {
            self.set_hidden(a, true, false);
            self.mark_unread(a, true);
        }
        for v in hidden_floats.iter().chain(&independent) {
            self.set_hidden(v, false, false);
            self.mark_unread(v, false);
        }
        let mut terms: Vec<FExpr> = accs
            .iter()
            .map(|a| {
                let v = FExpr::Var(a.clone());
                if self.rng.chance(0.3) {
                    FExpr::Call1(Fn1::Tanh, bx(v))
                } else {
                    v
                }
            })
            .collect();
        // An element of every buffer (one that no later loop reads would be dead, and its loop
        // irrelevant to the gradient: no jam through it).
        for p in run.produced.clone() {
            let c = self.rng.below(len);
            terms.push(FExpr::Index(p, IExpr::Lit(c)));
        }
        if let Some(y) = &over {
            let c = self.rng.below(len);
            terms.push(FExpr::Index(y.clone(), IExpr::Lit(c)));
        }
        if let Some(c) = &carried {
            terms.push(FExpr::Var(c.clone()));
        }
        let mut value = terms.remove(0);
        for t in terms {
            let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub]);
            value = FExpr::Bin(op, bx(value), bx(t));
        }
        value
    }

    /// The statement of a near miss between two loops of a run (`Dependent`): `let t = a[c] *
    /// e;` of a buffer a loop before wrote (`dep` 0), `w = 0.5 * w + e;` of a scalar the loop
    /// before read (1), `let t = acc * 0.5;` of the loop before's accumulator (2).
    fn jam_dependent(
        &mut self,
        dep: usize,
        run: &JamRun,
        accs: &[String],
        w: Option<&str>,
        out: &mut Vec<Stmt>,
    ) {
        match (dep, w, accs.last()) {
            (1, Some(w), _) => {
                let e = self.operand(1);
                let e = self.bounded(e);
                out.push(Stmt::Assign {
                    place: Place::Var(w.to_string()),
                    op: AssignOp::Set,
                    value: FExpr::Bin(
                        BinOp::Add,
                        bx(FExpr::Bin(
                            BinOp::Mul,
                            bx(FExpr::Lit(0.5)),
                            bx(FExpr::Var(w.to_string())),
                        )),
                        bx(e),
                    ),
                });
            }
            (2, _, Some(acc)) => {
                let t = self.fresh_float_name();
                out.push(Stmt::Let {
                    name: t.clone(),
                    mutable: false,
                    annotate: false,
                    init: FExpr::Bin(BinOp::Mul, bx(FExpr::Var(acc.clone())), bx(FExpr::Lit(0.5))),
                });
                self.declare_float(&t, false);
            }
            _ => {
                let a = run.produced.last().expect("a produced buffer").clone();
                let c = self.rng.below(run.len);
                let e = self.operand(1);
                let e = self.bounded(e);
                let t = self.fresh_float_name();
                out.push(Stmt::Let {
                    name: t.clone(),
                    mutable: false,
                    annotate: false,
                    init: FExpr::Bin(BinOp::Mul, bx(FExpr::Index(a, IExpr::Lit(c))), bx(e)),
                });
                self.declare_float(&t, false);
            }
        }
    }

    /// One loop of a run: its index and body (the store of its role at the shared index,
    /// sometimes after a private `let`, sometimes under an `if`; and what a near miss adds).
    fn jam_loop(&mut self, run: &JamRun, spec: &JamLoop) -> (String, Vec<Stmt>) {
        let j = self.fresh_int_from(&["j", "j", "j", "k", "i"]);
        self.loop_depth += 1;
        self.nesting += 1;
        let saved = (self.no_calls, self.no_if_expr, self.returns_ok);
        // (A call or an `if` expression now and then: another near miss.)
        self.no_calls = self.rng.chance(0.95);
        self.no_if_expr = self.rng.chance(0.85);
        self.returns_ok = false;
        self.push_with_int(&j, spec.lo, spec.hi);
        let mut body = Vec::new();
        if self.rng.chance(0.15) {
            body.push(self.let_stmt(None));
        }
        let at = run.key.at(&j);
        let elem = |a: &str, i: IExpr| FExpr::Index(a.to_string(), i);
        // An earlier buffer at the shared index (or, for a near miss, next to it, mirrored).
        let src = |g: &mut Gen| {
            let p = if g.rng.chance(0.65) {
                run.produced.last().expect("a produced buffer").clone()
            } else {
                g.rng.pick(&run.produced).clone()
            };
            let jv = || bx(IExpr::Var(j.clone()));
            let i = match (spec.neighbour, spec.mirror) {
                (Some(true), _) => IExpr::Add(jv(), bx(IExpr::Lit(1))),
                (Some(false), _) => IExpr::Sub(jv(), bx(IExpr::Lit(1))),
                (_, true) => IExpr::Sub(bx(IExpr::Lit(run.len - 1)), jv()),
                _ => at.clone(),
            };
            FExpr::Index(p, i)
        };
        let (place, op, mut value) = match spec.role {
            JamRole::Produce => {
                // The first loop reads the buffer a later one overwrites.
                let x = match (&run.over, run.produced.is_empty()) {
                    (Some(y), true) => elem(y, at.clone()),
                    _ => self.jam_elem(run, &j),
                };
                let v = self.jam_produce(run, &j, x);
                (Place::Elem(spec.dst.clone(), at.clone()), AssignOp::Set, v)
            }
            JamRole::Map => {
                let a = src(self);
                let b = (run.produced.len() >= 2 && self.rng.chance(0.4)).then(|| {
                    let p = self.rng.pick(&run.produced).clone();
                    elem(&p, at.clone())
                });
                let v = self.jam_map(run, &j, a, b);
                (Place::Elem(spec.dst.clone(), at.clone()), AssignOp::Set, v)
            }
            JamRole::Acc => {
                let a = src(self);
                let (op, v) = self.jam_acc(run, &j, &spec.dst, a);
                (Place::Var(spec.dst.clone()), op, v)
            }
            JamRole::Over => {
                let y = run.over.clone().expect("a buffer to overwrite");
                let a = src(self);
                let here = elem(&y, at.clone());
                let f = self.jam_factor(run, &j);
                let (op, v) = match self.rng.below(4) {
                    0 => (
                        AssignOp::Set,
                        FExpr::Bin(BinOp::Mul, bx(here), bx(FExpr::Call1(Fn1::Tanh, bx(a)))),
                    ),
                    1 => (
                        AssignOp::Set,
                        FExpr::Bin(
                            BinOp::Sub,
                            bx(a),
                            bx(FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), bx(here))),
                        ),
                    ),
                    2 => (
                        AssignOp::Compound(BinOp::Add),
                        FExpr::Bin(BinOp::Mul, bx(a), bx(f)),
                    ),
                    _ => (AssignOp::Set, FExpr::Bin(BinOp::Add, bx(a), bx(f))),
                };
                (Place::Elem(y, at.clone()), op, v)
            }
        };
        if let Some(w) = &spec.reads {
            value = FExpr::Bin(BinOp::Mul, bx(value), bx(FExpr::Var(w.clone())));
        }
        match &spec.carried {
            // The first loop: `c += x[j] * e`.
            Some((c, true)) => {
                let x = self.jam_elem(run, &j);
                let f = self.jam_factor(run, &j);
                body.push(Stmt::Assign {
                    place: Place::Var(c.clone()),
                    op: AssignOp::Compound(BinOp::Add),
                    value: FExpr::Bin(BinOp::Mul, bx(x), bx(f)),
                });
            }
            // The second: reads it.
            Some((c, false)) => {
                let c = bx(FExpr::Var(c.clone()));
                value = if self.rng.chance(0.5) {
                    FExpr::Bin(BinOp::Mul, bx(value), bx(FExpr::Call1(Fn1::Tanh, c)))
                } else {
                    FExpr::Bin(
                        BinOp::Add,
                        bx(value),
                        bx(FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), c)),
                    )
                };
            }
            None => {}
        }
        if self.feat.calls {
            value = self.jam_call(run, &j, &at, value);
        }
        let store = Stmt::Assign {
            place: place.clone(),
            op,
            value,
        };
        if self.rng.chance(0.1) {
            // `if x[j] > 0.0 { a[j] = ..; } else { a[j] = ..; }`
            let x = self.jam_elem(run, &j);
            let cut = *self.rng.pick(&[0.0, 0.5, -0.5]);
            let other = self.jam_factor(run, &j);
            body.push(Stmt::If {
                arms: vec![(
                    Cond::Cmp(CmpOp::Gt, x, FExpr::Lit(cut)),
                    Block {
                        stmts: vec![store],
                        tail: None,
                    },
                )],
                els: Some(Block {
                    stmts: vec![Stmt::Assign {
                        place,
                        op,
                        value: other,
                    }],
                    tail: None,
                }),
            });
        } else {
            body.push(store);
        }
        if spec.both && !run.produced.is_empty() {
            // A buffer an earlier loop wrote, written again: `a[j] += 0.5 * e`.
            let p = self.rng.pick(&run.produced).clone();
            let f = self.jam_factor(run, &j);
            body.push(Stmt::Assign {
                place: Place::Elem(p, at.clone()),
                op: AssignOp::Compound(BinOp::Add),
                value: FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), bx(f)),
            });
        }
        if spec.brk {
            let k = self.rng.range(spec.lo + 1, spec.hi.max(spec.lo + 1));
            body.push(Stmt::If {
                arms: vec![(
                    Cond::ICmp(CmpOp::Ge, IExpr::Var(j.clone()), IExpr::Lit(k)),
                    Block {
                        stmts: vec![Stmt::Break],
                        tail: None,
                    },
                )],
                els: None,
            });
        }
        self.pop();
        (self.no_calls, self.no_if_expr, self.returns_ok) = saved;
        self.nesting -= 1;
        self.loop_depth -= 1;
        (j, body)
    }

    /// `value` of a loop of a run, sometimes (with calls) with a bounded call of a helper added or
    /// multiplied in: of floats, mostly of an earlier buffer at the shared index (`g0(a[j],
    /// x[j])`); taking a slice, of an input of the run (`g1(s, x[j])`, `g1(&h, ..)`), which the
    /// run never writes and so still jams; or, as a near miss ([`Gen::jam_call_miss`]), of a
    /// buffer an earlier loop of the run wrote (`g1(&a, ..)`: read at every index).
    fn jam_call(&mut self, run: &JamRun, j: &str, at: &IExpr, value: FExpr) -> FExpr {
        let floats = !self.callees.is_empty();
        let slices = !self.slice_callees.is_empty();
        if !(floats || slices) || !self.rng.chance(0.3) {
            return value;
        }
        let elem = |g: &mut Gen| {
            if !run.produced.is_empty() && g.rng.chance(0.6) {
                FExpr::Index(g.rng.pick(&run.produced).clone(), at.clone())
            } else {
                g.jam_elem(run, j)
            }
        };
        let call = if slices && (!floats || self.rng.chance(0.6)) {
            let (name, kinds, len) = self.rng.pick(&self.slice_callees).clone();
            let params: Vec<String> = self.scopes[0].arrs.iter().map(|a| a.name.clone()).collect();
            let whole = |a: &str| {
                let i = if params.iter().any(|p| p == a) {
                    WHOLE
                } else {
                    WHOLE_REF
                };
                FExpr::Index(a.to_string(), IExpr::Lit(i))
            };
            let inputs: Vec<String> = run
                .inputs
                .iter()
                .filter(|a| a.len == len)
                .map(|a| a.name.clone())
                .collect();
            let written = run.len == len && !run.produced.is_empty() && self.rng.chance(0.25);
            let arg = if written {
                self.jam_call_miss = true;
                self.jam_calls[2] += 1;
                whole(&self.rng.pick(&run.produced).clone())
            } else if !inputs.is_empty() {
                self.jam_calls[1] += 1;
                whole(&self.rng.pick(&inputs).clone())
            } else {
                return value;
            };
            let mut arg = Some(arg);
            let mut first = true;
            let args = kinds
                .iter()
                .map(|&k| match k {
                    true => arg.take().expect("one slice parameter"),
                    false if std::mem::take(&mut first) => elem(self),
                    false => self.jam_factor(run, j),
                })
                .collect();
            FExpr::Call(name, args)
        } else {
            self.jam_calls[0] += 1;
            let (name, arity) = self.rng.pick(&self.callees).clone();
            let mut args: Vec<FExpr> = vec![elem(self)];
            for _ in 1..arity {
                args.push(self.jam_factor(run, j));
            }
            FExpr::Call(name, args)
        };
        let call = self.bounded(call);
        if self.rng.chance(0.5) {
            FExpr::Bin(BinOp::Mul, bx(value), bx(call))
        } else {
            FExpr::Bin(
                BinOp::Add,
                bx(value),
                bx(FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), bx(call))),
            )
        }
    }

    /// An element of an input of the run at `j` (mostly), at the shared index, or at `(j + 1)
    /// % x.len()`; or a scalar when there is no input.
    fn jam_elem(&mut self, run: &JamRun, j: &str) -> FExpr {
        if run.inputs.is_empty() {
            return self.var_leaf();
        }
        let a = self.rng.pick(&run.inputs).clone();
        for s in self.scopes.iter_mut().rev() {
            if let Some(b) = s.arrs.iter_mut().rev().find(|b| b.name == a.name) {
                b.uses += 1;
                break;
            }
        }
        let jv = || bx(IExpr::Var(j.to_string()));
        let i = match self.rng.below(10) {
            0 | 1 => run.key.at(j),
            2 => IExpr::Rem(
                bx(IExpr::Add(jv(), bx(IExpr::Lit(1)))),
                bx(IExpr::Len(a.name.clone())),
            ),
            _ => *jv(),
        };
        FExpr::Index(a.name, i)
    }

    /// A factor of moderate size: a scalar in scope, an input element, a bounded random
    /// operand, `0.5 + 0.25 * (j as f64)`.
    fn jam_factor(&mut self, run: &JamRun, j: &str) -> FExpr {
        let have_floats = !self.floats().is_empty();
        let w = [if have_floats { 4 } else { 0 }, 3, 2, 1];
        match self.rng.weighted(&w) {
            0 => FExpr::Var(self.read_float().expect("a float")),
            1 => self.jam_elem(run, j),
            2 => {
                let e = self.operand(1);
                self.bounded(e)
            }
            _ => FExpr::Bin(
                BinOp::Add,
                bx(FExpr::Lit(0.5)),
                bx(FExpr::Bin(
                    BinOp::Mul,
                    bx(FExpr::Lit(0.25)),
                    bx(FExpr::Cast(IExpr::Var(j.to_string()))),
                )),
            ),
        }
    }

    /// What the first loop stores: `x * e`, `(x - e).tanh()`, `x * x + e`, `e.sin() + x`,
    /// `(x * x + 1.0).sqrt()`, `(0.5 * x).exp()`, `0.5 * x + e * x2`.
    fn jam_produce(&mut self, run: &JamRun, j: &str, x: FExpr) -> FExpr {
        let b = bx;
        let x2 = || b(x.clone());
        match self.rng.below(7) {
            0 => FExpr::Bin(BinOp::Mul, x2(), b(self.jam_factor(run, j))),
            1 => FExpr::Call1(
                Fn1::Tanh,
                b(FExpr::Bin(BinOp::Sub, x2(), b(self.jam_factor(run, j)))),
            ),
            2 => FExpr::Bin(
                BinOp::Add,
                b(FExpr::Bin(BinOp::Mul, x2(), x2())),
                b(self.jam_factor(run, j)),
            ),
            3 => {
                // (A constant receiver such as `(0.5 + 0.25 * (j as f64)).sin()` compiles, but
                // the shrinker's checks refuse it.)
                let mut e = self.jam_factor(run, j);
                if is_const(&e) {
                    e = self.var_leaf();
                }
                FExpr::Bin(BinOp::Add, b(FExpr::Call1(Fn1::Sin, b(e))), x2())
            }
            4 => FExpr::Call1(
                Fn1::Sqrt,
                b(FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Bin(BinOp::Mul, x2(), x2())),
                    b(FExpr::Lit(1.0)),
                )),
            ),
            5 => FExpr::Call1(
                Fn1::Exp,
                b(FExpr::Bin(BinOp::Mul, b(FExpr::Lit(0.5)), x2())),
            ),
            _ => {
                let e = self.jam_factor(run, j);
                let y = self.jam_elem(run, j);
                FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Bin(BinOp::Mul, b(FExpr::Lit(0.5)), x2())),
                    b(FExpr::Bin(BinOp::Mul, b(e), b(y))),
                )
            }
        }
    }

    /// What a later loop stores from an earlier buffer's `a` (and `b`): `a * e`, `a.tanh() +
    /// e`, `(a * a + 0.25).sqrt()`, `a.sin() * x`, `a - x`, `a.sin().exp()`, `a * b`, `0.5 *
    /// a + b`.
    fn jam_map(&mut self, run: &JamRun, j: &str, a: FExpr, other: Option<FExpr>) -> FExpr {
        let b = bx;
        let a2 = || b(a.clone());
        if let Some(o) = other {
            return if self.rng.chance(0.5) {
                FExpr::Bin(BinOp::Mul, a2(), b(o))
            } else {
                FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Bin(BinOp::Mul, b(FExpr::Lit(0.5)), a2())),
                    b(o),
                )
            };
        }
        match self.rng.below(6) {
            0 => FExpr::Bin(BinOp::Mul, a2(), b(self.jam_factor(run, j))),
            1 => FExpr::Bin(
                BinOp::Add,
                b(FExpr::Call1(Fn1::Tanh, a2())),
                b(self.jam_factor(run, j)),
            ),
            2 => FExpr::Call1(
                Fn1::Sqrt,
                b(FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Bin(BinOp::Mul, a2(), a2())),
                    b(FExpr::Lit(0.25)),
                )),
            ),
            3 => FExpr::Bin(
                BinOp::Mul,
                b(FExpr::Call1(Fn1::Sin, a2())),
                b(self.jam_elem(run, j)),
            ),
            4 => FExpr::Bin(BinOp::Sub, a2(), b(self.jam_elem(run, j))),
            _ => FExpr::Call1(Fn1::Exp, b(FExpr::Call1(Fn1::Sin, a2()))),
        }
    }

    /// How a later loop accumulates an earlier buffer's `a` into `acc`: `acc += a * e`, `acc
    /// -= a`, `acc = acc + a.tanh()`, `acc += (a - x).powi(2)`, `acc = 0.5 * acc + a`.
    fn jam_acc(&mut self, run: &JamRun, j: &str, acc: &str, a: FExpr) -> (AssignOp, FExpr) {
        let b = bx;
        let v = || b(FExpr::Var(acc.to_string()));
        match self.rng.below(5) {
            0 => (
                AssignOp::Compound(BinOp::Add),
                FExpr::Bin(BinOp::Mul, b(a), b(self.jam_factor(run, j))),
            ),
            1 => (AssignOp::Compound(BinOp::Sub), a),
            2 => (
                AssignOp::Set,
                FExpr::Bin(BinOp::Add, v(), b(FExpr::Call1(Fn1::Tanh, b(a)))),
            ),
            3 => (
                AssignOp::Compound(BinOp::Add),
                FExpr::Powi(b(FExpr::Bin(BinOp::Sub, b(a), b(self.jam_elem(run, j)))), 2),
            ),
            _ => (
                AssignOp::Set,
                FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Bin(BinOp::Mul, b(FExpr::Lit(0.5)), v())),
                    b(a),
                ),
            ),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Selection loops.
    // ---------------------------------------------------------------------------------------

    /// Whether selection loops may be generated (they need loops and slices too).
    fn selection_features(&self) -> bool {
        self.feat.selection_loops && self.feat.loops && self.feat.slices
    }

    /// What a selection loop may select from: read-only arrays (slices) of at least two
    /// elements. Their elements are independent inputs, so no comparison of two of them is a
    /// tie at every point.
    fn selection_sources(&self) -> Vec<Arr> {
        self.arrs()
            .into_iter()
            .filter(|a| !a.mutable && a.len >= 2)
            .collect()
    }

    /// A selection loop as a random statement: the loop (over a slice, or over a buffer filled
    /// just before), and a `let` of a value computed from its result, for the block's tail.
    fn selection_stmt(&mut self) -> Vec<Stmt> {
        let mut out = Vec::new();
        let init = self.selection_site(&mut out, false);
        let name = self.fresh_float_name();
        self.declare_float(&name, false);
        out.push(Stmt::Let {
            name,
            mutable: false,
            annotate: self.rng.chance(0.2),
            init,
        });
        out
    }

    /// The body of an entry function built around one or two selection loops, ending in a
    /// value that uses what they selected (linearly or not), and often a random tail.
    fn selection_body(&mut self) -> Block {
        self.push();
        let mut stmts = Vec::new();
        for _ in 0..self.rng.range(0, 2) {
            stmts.extend(self.stmt());
        }
        let n = if self.rng.chance(0.3) { 2 } else { 1 };
        let mut value: Option<FExpr> = None;
        for _ in 0..n {
            let u = self.selection_site(&mut stmts, true);
            value = Some(match value {
                None => u,
                Some(v) => {
                    let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub, BinOp::Mul]);
                    FExpr::Bin(op, bx(v), bx(u))
                }
            });
            if self.rng.chance(0.3) {
                stmts.extend(self.stmt());
            }
        }
        let mut value = value.expect("a selection loop");
        if self.rng.chance(0.2) {
            let name = self.fresh_float_name();
            stmts.push(Stmt::Let {
                name: name.clone(),
                mutable: false,
                annotate: self.rng.chance(0.3),
                init: value,
            });
            self.declare_hidden(&name, false);
            value = FExpr::Var(name);
        }
        let tail = if self.rng.chance(0.6) {
            let other = self.tail();
            let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub]);
            if self.rng.chance(0.5) {
                FExpr::Bin(op, bx(value), bx(other))
            } else {
                FExpr::Bin(op, bx(other), bx(value))
            }
        } else {
            value
        };
        self.pop();
        Block {
            stmts,
            tail: Some(tail),
        }
    }

    /// A selection loop with what it needs before it (pushed to `out`): over a slice, over a
    /// local buffer filled from one, or (with `outer_ok`) inside an outer loop whose iterations
    /// fill a buffer, select from it and sum or chain the results. Returns an expression that
    /// uses the selected value.
    fn selection_site(&mut self, out: &mut Vec<Stmt>, outer_ok: bool) -> FExpr {
        let srcs = self.selection_sources();
        let s = self.rng.pick(&srcs).clone();
        let mode = self.rng.weighted(&[
            5,
            if self.feat.buffers { 2 } else { 0 },
            if outer_ok && self.loop_depth == 0 {
                3
            } else {
                0
            },
        ]);
        match mode {
            0 => {
                let (stmts, sel) = self.selection_loop(&s);
                out.extend(stmts);
                self.selection_use(&sel, out)
            }
            1 => {
                let z = self.selection_buffer(&s, out);
                out.push(self.selection_fill(&z, &s, None));
                self.set_hidden(&z.name, true, false);
                let (stmts, sel) = self.selection_loop(&z);
                out.extend(stmts);
                self.selection_use(&sel, out)
            }
            _ => self.outer_selection(&s, out),
        }
    }

    /// `let mut z = [0.0; n];` (or `vec![0.0; s.len()]`) with the length of `s`, declared
    /// hidden: it is shown once filled.
    fn selection_buffer(&mut self, s: &Arr, out: &mut Vec<Stmt>) -> Arr {
        let name = self.fresh_arr_name();
        let vec = match self.rng.below(3) {
            0 => Some(IExpr::Len(s.name.clone())),
            1 => Some(IExpr::Lit(s.len)),
            _ => None,
        };
        let annotate = self.rng.chance(0.4);
        let bare = !annotate && self.rng.chance(0.4);
        out.push(Stmt::LetBuf {
            name: name.clone(),
            len: s.len,
            annotate,
            bare,
            vec: vec.clone(),
        });
        let arr = Arr {
            name,
            len: s.len,
            mutable: true,
            uses: 0,
            hidden: true,
            is_vec: vec.is_some(),
        };
        self.top().arrs.push(arr.clone());
        arr
    }

    /// `for j in 0..n { z[j] = .. s[j] .. }`: distinct values (a one-to-one function of the
    /// element, plus a random shift), depending on the outer loop's `row` if any.
    fn selection_fill(&mut self, z: &Arr, s: &Arr, row: Option<&str>) -> Stmt {
        let j = self.fresh_int_name();
        self.loop_depth += 1;
        self.push_with_int(&j, 0, s.len - 1);
        let jv = || IExpr::Var(j.clone());
        let at = match row {
            Some(r) if self.rng.chance(0.4) => FExpr::Index(
                s.name.clone(),
                IExpr::Rem(
                    bx(IExpr::Add(bx(jv()), bx(IExpr::Var(r.to_string())))),
                    bx(IExpr::Len(s.name.clone())),
                ),
            ),
            _ => FExpr::Index(s.name.clone(), jv()),
        };
        let e = self.operand(1);
        let e = self.bounded(e);
        let value = match self.rng.below(3) {
            0 => {
                let k = *self.rng.pick(&[1.0, 2.0, 0.5, -1.0, 1.5]);
                FExpr::Bin(
                    BinOp::Add,
                    bx(FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(k)), bx(at))),
                    bx(e),
                )
            }
            1 => FExpr::Call1(Fn1::Tanh, bx(FExpr::Bin(BinOp::Sub, bx(at), bx(e)))),
            _ => FExpr::Bin(
                BinOp::Add,
                bx(FExpr::Bin(
                    BinOp::Mul,
                    bx(at),
                    bx(FExpr::Bin(
                        BinOp::Add,
                        bx(FExpr::Lit(1.0)),
                        bx(FExpr::Bin(
                            BinOp::Mul,
                            bx(FExpr::Lit(0.25)),
                            bx(FExpr::Cast(jv())),
                        )),
                    )),
                )),
                bx(e),
            ),
        };
        self.pop();
        self.loop_depth -= 1;
        let end = match self.rng.below(3) {
            0 => IExpr::Len(z.name.clone()),
            1 => IExpr::Len(s.name.clone()),
            _ => IExpr::Lit(s.len),
        };
        Stmt::For {
            var: j.clone(),
            start: IExpr::Lit(0),
            end,
            rev: false,
            body: Block {
                stmts: vec![Stmt::Assign {
                    place: Place::Elem(z.name.clone(), jv()),
                    op: AssignOp::Set,
                    value,
                }],
                tail: None,
            },
        }
    }

    /// `let mut total = 0.0; for r in 0..rows { [fill z]; <selection>; total += use(m); }`, or
    /// a recurrence `acc = 0.5 * acc + use(m)` (the outer loop then is reversed as a whole,
    /// and each iteration's selected position must be kept). Returns the accumulator.
    fn outer_selection(&mut self, s: &Arr, out: &mut Vec<Stmt>) -> FExpr {
        let acc = self.fresh_name(&ACC_NAMES);
        let recurrence = self.rng.chance(0.4);
        let init = match (recurrence, self.rng.chance(0.5)) {
            (true, true) => self.var_leaf(),
            (true, false) => FExpr::Lit(0.5),
            _ => FExpr::Lit(0.0),
        };
        out.push(Stmt::Let {
            name: acc.clone(),
            mutable: true,
            annotate: is_const(&init) || self.rng.chance(0.2),
            init,
        });
        self.declare_hidden(&acc, true);
        // The buffer: declared before the outer loop, in it, or none (select from `s`).
        let buf = if self.feat.buffers {
            self.rng.weighted(&[2, 2, 1])
        } else {
            2
        };
        let before = (buf == 0).then(|| self.selection_buffer(s, out));
        let others: Vec<Arr> = self
            .arrs()
            .into_iter()
            .filter(|a| !a.mutable && a.name != s.name)
            .collect();
        let (end, hi) = if !others.is_empty() && self.rng.chance(0.3) {
            let q = self.rng.pick(&others).clone();
            (IExpr::Len(q.name), q.len - 1)
        } else {
            let n = self.rng.range(1, 3);
            (IExpr::Lit(n), n - 1)
        };
        let r = self.fresh_int_name();
        self.loop_depth += 1;
        self.nesting += 1;
        self.push_with_int(&r, 0, hi);
        let mut body = Vec::new();
        let src = match (buf, before) {
            (0, Some(z)) => {
                body.push(self.selection_fill(&z, s, Some(&r)));
                self.set_hidden(&z.name, true, false);
                z
            }
            (1, _) => {
                let z = self.selection_buffer(s, &mut body);
                body.push(self.selection_fill(&z, s, Some(&r)));
                self.set_hidden(&z.name, true, false);
                z
            }
            _ => s.clone(),
        };
        let (stmts, sel) = self.selection_loop(&src);
        body.extend(stmts);
        let u = self.selection_use(&sel, &mut body);
        body.push(self.acc_step(&acc, u, recurrence, Fn1::Sin));
        self.pop();
        self.nesting -= 1;
        self.loop_depth -= 1;
        out.push(Stmt::For {
            var: r,
            start: IExpr::Lit(0),
            end,
            rev: self.feat.rev_ranges && self.rng.chance(0.15),
            body: Block {
                stmts: body,
                tail: None,
            },
        });
        if self.rng.chance(0.3) {
            FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), bx(FExpr::Var(acc)))
        } else {
            FExpr::Var(acc)
        }
    }

    /// A start value from an active input other than the array: a scalar parameter, maybe
    /// scaled or squashed (never an element, which a comparison would meet as a tie).
    fn selection_start(&mut self, a: &Arr) -> FExpr {
        let params: Vec<String> = self.scopes[0]
            .floats
            .iter()
            .filter(|v| !v.hidden)
            .map(|v| v.name.clone())
            .collect();
        let Some(p) = (!params.is_empty()).then(|| self.rng.pick(&params).clone()) else {
            return FExpr::Index(a.name.clone(), IExpr::Lit(0));
        };
        self.read_named(&p);
        let v = FExpr::Var(p);
        match self.rng.below(4) {
            0 | 1 => v,
            2 => FExpr::Bin(BinOp::Mul, Box::new(FExpr::Lit(0.5)), Box::new(v)),
            _ => self.bounded(v),
        }
    }

    /// A name for an integer that is free, from `names` or numbered.
    fn fresh_int_from(&mut self, names: &[&str]) -> String {
        let n = self.rng.pick(names).to_string();
        if !self.name_in_use(&n) {
            return n;
        }
        self.fresh += 1;
        format!("{n}{}", self.fresh)
    }

    /// A selection loop over `a` (a slice, or a buffer already filled) with its declarations:
    ///
    /// ```text
    /// let mut m = a[0];  [let mut best: usize = 0;]
    /// for i in 1..a.len() { if a[i] > m { m = a[i]; [best = i;] } }
    /// ```
    ///
    /// Maxima and minima, `>` `>=` `<` `<=`, comparisons through expressions (`a[i] - m <
    /// 0.0`, `!(a[i] <= m)`, `a[i].exp() > m.exp()`, `&& i > 1`), reversed ranges and
    /// indices, start values `a[0]`, `a[a.len() - 1]`, another input, a constant every
    /// element beats, a value no element beats; integer code beside the copy (an argmax, a
    /// counter, an integer `if` around it). Near misses ([`NearMiss`]) must not be rewritten.
    fn selection_loop(&mut self, a: &Arr) -> (Vec<Stmt>, Selected) {
        use NearMiss::*;
        let mut out = Vec::new();
        let near = self
            .rng
            .chance(SELECTION_NEAR_MISS)
            .then(|| *self.rng.pick(&NEAR_MISSES));
        if near.is_some() {
            self.near_misses += 1;
        } else {
            self.selections += 1;
        }
        let is_max = self.rng.chance(0.55);
        let name = self.fresh_name(if is_max { &MAX_NAMES } else { &MIN_NAMES });
        let len = a.len;
        let arr = a.name.clone();
        let len_e = || IExpr::Len(arr.clone());
        let last = || IExpr::Sub(bx(len_e()), bx(IExpr::Lit(1)));
        let rev_ok = self.feat.rev_ranges && near != Some(While);
        // 0: a[0], 1..n; 1: a[n - 1], (0..n - 1).rev(); 2: a[n - 1], 1..n at a[n - 1 - i];
        // 3: another input, 0..n; 4: a constant that every element beats; 5: a value that
        // (for slices) no element beats.
        let kind = self.rng.weighted(&[
            5,
            if rev_ok { 2 } else { 0 },
            2,
            3,
            if near == Some(MinMax) { 0 } else { 1 },
            1,
        ]);
        let i = self.fresh_int_name();
        let iv = || IExpr::Var(i.clone());
        let literal_end = self.rng.chance(0.2);
        let end = if literal_end {
            IExpr::Lit(len)
        } else {
            len_e()
        };
        let (init, start, end, lo, hi, rev, idx, best_init) = match kind {
            0 => (
                FExpr::Index(arr.clone(), IExpr::Lit(0)),
                1,
                end,
                1,
                len - 1,
                false,
                iv(),
                IExpr::Lit(0),
            ),
            1 => (
                FExpr::Index(arr.clone(), last()),
                0,
                if literal_end {
                    IExpr::Lit(len - 1)
                } else {
                    last()
                },
                0,
                len - 2,
                true,
                iv(),
                last(),
            ),
            2 => (
                FExpr::Index(arr.clone(), last()),
                1,
                end,
                1,
                len - 1,
                false,
                IExpr::Sub(bx(last()), bx(iv())),
                last(),
            ),
            _ => {
                let init = match kind {
                    3 => self.selection_start(a),
                    4 => FExpr::Lit(if is_max { -1000.0 } else { 1000.0 }),
                    _ => {
                        let p = self.selection_start(a);
                        let abs = FExpr::Call1(Fn1::Abs, bx(p));
                        if is_max {
                            FExpr::Bin(BinOp::Add, bx(abs), bx(FExpr::Lit(4.0)))
                        } else {
                            FExpr::Bin(BinOp::Sub, bx(FExpr::Neg(bx(abs))), bx(FExpr::Lit(4.0)))
                        }
                    }
                };
                let rev = rev_ok && self.rng.chance(0.3);
                let idx = if self.rng.chance(0.25) {
                    IExpr::Sub(bx(last()), bx(iv()))
                } else {
                    iv()
                };
                (init, 0, end, 0, len - 1, rev, idx, IExpr::Lit(0))
            }
        };
        // With a constant start, every element must get a chance to replace it.
        let always_beaten = kind == 4;
        out.push(Stmt::Let {
            name: name.clone(),
            mutable: true,
            annotate: is_const(&init) || self.rng.chance(0.2),
            init: init.clone(),
        });
        let e = || FExpr::Index(arr.clone(), idx.clone());
        let m = || FExpr::Var(name.clone());
        let strict = self.rng.chance(0.6);
        let op = match (is_max, strict) {
            (true, true) => CmpOp::Gt,
            (true, false) => CmpOp::Ge,
            (false, true) => CmpOp::Lt,
            (false, false) => CmpOp::Le,
        };
        let mut cond = self.selection_cond(op, e(), m(), !always_beaten);
        if self.rng.chance(0.12) && !always_beaten {
            let extra = if self.rng.chance(0.5) {
                // A bounded maximum: `a[i] > m && a[i] < 2.5`.
                let bound = if is_max { 2.5 } else { -2.5 };
                Cond::Cmp(flip(op), e(), FExpr::Lit(bound))
            } else {
                self.int_cond(&i, lo, hi)
            };
            cond = if self.rng.chance(0.5) {
                Cond::And(bx(cond), bx(extra))
            } else {
                Cond::And(bx(extra), bx(cond))
            };
        }
        let copy_value = match near {
            Some(PlusZero) if self.rng.chance(0.2) => {
                FExpr::Bin(BinOp::Sub, bx(e()), bx(FExpr::Lit(0.0)))
            }
            Some(PlusZero) => FExpr::Bin(BinOp::Add, bx(e()), bx(FExpr::Lit(0.0))),
            Some(TimesOne) if self.rng.chance(0.5) => {
                FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(1.0)), bx(e()))
            }
            Some(TimesOne) => FExpr::Bin(BinOp::Mul, bx(e()), bx(FExpr::Lit(1.0))),
            _ => e(),
        };
        let mut then = vec![Stmt::Assign {
            place: Place::Var(name.clone()),
            op: AssignOp::Set,
            value: copy_value,
        }];
        let mut before_if: Vec<Stmt> = Vec::new();
        let mut after_if: Vec<Stmt> = Vec::new();
        let mut extras: Vec<FExpr> = Vec::new();
        let mut new_floats: Vec<String> = Vec::new();
        let mut arms_extra: Vec<(Cond, Block)> = Vec::new();
        match near {
            Some(SecondAssign) => {
                // Another float assigned in the loop: a count of improvements, or a sum.
                let c = self.hygienic_name(&name, "_sel", &["count", "moves", "sum_x"]);
                out.push(Stmt::Let {
                    name: c.clone(),
                    mutable: true,
                    annotate: true,
                    init: FExpr::Lit(0.0),
                });
                if self.rng.chance(0.5) {
                    then.push(Stmt::Assign {
                        place: Place::Var(c.clone()),
                        op: AssignOp::Compound(BinOp::Add),
                        value: FExpr::Lit(1.0),
                    });
                } else {
                    after_if.push(Stmt::Assign {
                        place: Place::Var(c.clone()),
                        op: AssignOp::Compound(BinOp::Add),
                        value: e(),
                    });
                }
                extras.push(FExpr::Var(c.clone()));
                new_floats.push(c);
            }
            Some(ReadInLoop) => match self.rng.below(3) {
                0 => {
                    // let d = a[i] - m; if d > 0.0 { m = a[i]; }
                    let d = self.fresh_float_name();
                    before_if.push(Stmt::Let {
                        name: d.clone(),
                        mutable: false,
                        annotate: false,
                        init: FExpr::Bin(BinOp::Sub, bx(e()), bx(m())),
                    });
                    cond = Cond::Cmp(op, FExpr::Var(d), FExpr::Lit(0.0));
                }
                1 => {
                    // run += 0.5 * m (the running maximum, summed)
                    let c = self.hygienic_name(&name, "_has", &["run", "trail"]);
                    out.push(Stmt::Let {
                        name: c.clone(),
                        mutable: true,
                        annotate: true,
                        init: FExpr::Lit(0.0),
                    });
                    after_if.push(Stmt::Assign {
                        place: Place::Var(c.clone()),
                        op: AssignOp::Compound(BinOp::Add),
                        value: FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(0.5)), bx(m())),
                    });
                    extras.push(FExpr::Var(c.clone()));
                    new_floats.push(c);
                }
                _ => {
                    // if a[i] > m { second = m; m = a[i]; } (the runner-up)
                    let c = self.fresh_name(&["second", "prev"]);
                    out.push(Stmt::Let {
                        name: c.clone(),
                        mutable: true,
                        annotate: is_const(&init) || self.rng.chance(0.2),
                        init: init.clone(),
                    });
                    then.insert(
                        0,
                        Stmt::Assign {
                            place: Place::Var(c.clone()),
                            op: AssignOp::Set,
                            value: m(),
                        },
                    );
                    extras.push(FExpr::Var(c.clone()));
                    new_floats.push(c);
                }
            },
            Some(MinMax) => {
                // if a[i] > mx { mx = a[i]; } else if a[i] < mn { mn = a[i]; }
                let c = self.fresh_name(if is_max { &MIN_NAMES } else { &MAX_NAMES });
                out.push(Stmt::Let {
                    name: c.clone(),
                    mutable: true,
                    annotate: is_const(&init) || self.rng.chance(0.2),
                    init: init.clone(),
                });
                arms_extra.push((
                    Cond::Cmp(flip(negate(op)), e(), FExpr::Var(c.clone())),
                    Block {
                        stmts: vec![Stmt::Assign {
                            place: Place::Var(c.clone()),
                            op: AssignOp::Set,
                            value: e(),
                        }],
                        tail: None,
                    },
                ));
                extras.push(FExpr::Var(c.clone()));
                new_floats.push(c);
            }
            Some(Break) if hi > lo && self.rng.chance(0.5) => {
                // An integer exit before the copy (never in the first iteration).
                let k = self.rng.range(lo + 1, hi);
                let c = if rev {
                    Cond::ICmp(CmpOp::Lt, iv(), IExpr::Lit(k))
                } else {
                    Cond::ICmp(CmpOp::Ge, iv(), IExpr::Lit(k))
                };
                before_if.push(Stmt::If {
                    arms: vec![(
                        c,
                        Block {
                            stmts: vec![Stmt::Break],
                            tail: None,
                        },
                    )],
                    els: None,
                });
            }
            Some(Break) => {
                // An active exit after the copy.
                let lit = *self.rng.pick(&[1.0, 1.5, 0.5, 2.0]);
                let c = if is_max {
                    Cond::Cmp(CmpOp::Gt, e(), FExpr::Lit(lit))
                } else {
                    Cond::Cmp(CmpOp::Lt, e(), FExpr::Lit(-lit))
                };
                after_if.push(Stmt::If {
                    arms: vec![(
                        c,
                        Block {
                            stmts: vec![Stmt::Break],
                            tail: None,
                        },
                    )],
                    els: None,
                });
            }
            _ => {}
        }
        // Integer code beside the copy: the argmax, a counter.
        let best = self.rng.chance(0.35).then(|| {
            let bn = self.hygienic_name(&name, "_src", &["best", "arg", "at"]);
            out.push(Stmt::LetIdx {
                name: bn.clone(),
                init: best_init,
            });
            let k = self.rng.below(then.len() + 1);
            then.insert(
                k,
                Stmt::SetIdx {
                    name: bn.clone(),
                    value: idx.clone(),
                },
            );
            bn
        });
        let mut els = None;
        let counter = (near != Some(While) && self.rng.chance(0.12)).then(|| {
            let c = self.fresh_int_from(&["cnt", "n_up", "steps"]);
            out.push(Stmt::LetIdx {
                name: c.clone(),
                init: IExpr::Lit(0),
            });
            let inc = Stmt::IncIdx { name: c.clone() };
            if self.rng.chance(0.5) {
                els = Some(Block {
                    stmts: vec![inc],
                    tail: None,
                });
            } else {
                after_if.push(inc);
            }
            extras.push(FExpr::Bin(
                BinOp::Mul,
                bx(FExpr::Lit(0.25)),
                bx(FExpr::Cast(IExpr::Var(c.clone()))),
            ));
            c
        });
        let mut arms = vec![(
            cond,
            Block {
                stmts: then,
                tail: None,
            },
        )];
        arms.extend(arms_extra);
        let mut sel_if = Stmt::If { arms, els };
        if !always_beaten && self.rng.chance(0.1) {
            let c = self.int_cond(&i, lo, hi);
            sel_if = Stmt::If {
                arms: vec![(
                    c,
                    Block {
                        stmts: vec![sel_if],
                        tail: None,
                    },
                )],
                els: None,
            };
        }
        let mut body = before_if;
        body.push(sel_if);
        body.extend(after_if);
        if near == Some(While) {
            // let mut i: usize = 1; while i < a.len() { ..; i += 1; }
            out.push(Stmt::LetIdx {
                name: i.clone(),
                init: IExpr::Lit(start),
            });
            body.push(Stmt::IncIdx { name: i.clone() });
            out.push(Stmt::While {
                cond: Cond::ICmp(CmpOp::Lt, iv(), end),
                body: Block {
                    stmts: body,
                    tail: None,
                },
            });
        } else {
            out.push(Stmt::For {
                var: i.clone(),
                start: IExpr::Lit(start),
                end,
                rev,
                body: Block {
                    stmts: body,
                    tail: None,
                },
            });
        }
        self.declare_float(&name, true);
        for c in &new_floats {
            self.declare_float(c, true);
        }
        if let Some(bn) = &best {
            self.top().ints.push(IVar {
                name: bn.clone(),
                lo: 0,
                hi: len - 1,
            });
        }
        if let Some(c) = counter {
            self.top().ints.push(IVar {
                name: c,
                lo: 0,
                hi: len,
            });
        }
        if near == Some(While) {
            // The counter stays in scope after the loop (with its final value).
            self.top().ints.push(IVar {
                name: i,
                lo: start,
                hi: len,
            });
        }
        let sel = Selected {
            var: name,
            arr,
            len,
            best,
            extras,
        };
        (out, sel)
    }

    /// `name` + `suffix` (a name the macro derives for its own locals) when hygiene is on,
    /// sometimes; otherwise a free name from `names`.
    fn hygienic_name(&mut self, name: &str, suffix: &str, names: &[&str]) -> String {
        let n = format!("{name}{suffix}");
        if self.feat.hygiene && self.rng.chance(0.2) && !self.name_in_use(&n) {
            return n;
        }
        let n = self.rng.pick(names).to_string();
        if !self.name_in_use(&n) {
            return n;
        }
        self.fresh += 1;
        format!("{n}{}", self.fresh)
    }

    /// `i > k`, `i <= k`, ... for a loop index `i` in `lo..=hi` (never `i >= 0` or `i < 0`).
    fn int_cond(&mut self, i: &str, lo: usize, hi: usize) -> Cond {
        let k = self.rng.range(lo, hi.max(lo));
        let op = if k == 0 {
            *self.rng.pick(&[CmpOp::Gt, CmpOp::Le])
        } else {
            *self.rng.pick(&CMPS)
        };
        Cond::ICmp(op, IExpr::Var(i.to_string()), IExpr::Lit(k))
    }

    /// The comparison that decides a copy: `e > m` (for `op` `>`), `m < e`, `e - m > 0.0`,
    /// `m - e < 0.0`, `!(e <= m)`, `e.exp() > m.exp()` (with `exp_ok`), `e * 2.0 > m + m`.
    fn selection_cond(&mut self, op: CmpOp, e: FExpr, m: FExpr, exp_ok: bool) -> Cond {
        let zero = FExpr::Lit(0.0);
        match self.rng.below(10) {
            0..=3 => Cond::Cmp(op, e, m),
            4 => Cond::Cmp(flip(op), m, e),
            5 => Cond::Cmp(op, FExpr::Bin(BinOp::Sub, bx(e), bx(m)), zero),
            6 => Cond::Cmp(flip(op), FExpr::Bin(BinOp::Sub, bx(m), bx(e)), zero),
            7 => Cond::Not(bx(Cond::Cmp(negate(op), e, m))),
            8 if exp_ok => Cond::Cmp(
                op,
                FExpr::Call1(Fn1::Exp, bx(e)),
                FExpr::Call1(Fn1::Exp, bx(m)),
            ),
            _ => Cond::Cmp(
                op,
                FExpr::Bin(BinOp::Mul, bx(e), bx(FExpr::Lit(2.0))),
                FExpr::Bin(BinOp::Add, bx(m.clone()), bx(m)),
            ),
        }
    }

    /// A value computed from a selection's result, for after the loop (statements it needs
    /// are pushed to `out`): `m`, `2.0 * m`, `m * y`, `m * m`, `m.sin()`, `m.exp()`, a
    /// log-sum-exp `se.ln() + m` with `se += (a[j] - m).exp()`, `(m - y).exp()`, and with an
    /// argmax `m * w[best] + m.sin()`; near misses' other values are added linearly.
    fn selection_use(&mut self, sel: &Selected, out: &mut Vec<Stmt>) -> FExpr {
        let m = || FExpr::Var(sel.var.clone());
        self.read_named(&sel.var);
        let weights = [3, 2, 2, 3, 3, 2, if sel.best.is_some() { 5 } else { 0 }];
        let mut u = match self.rng.weighted(&weights) {
            0 => m(),
            1 if self.rng.chance(0.5) => {
                let c = *self.rng.pick(&[2.0, 0.5, -1.5]);
                FExpr::Bin(BinOp::Mul, bx(FExpr::Lit(c)), bx(m()))
            }
            1 => {
                let y = self.var_leaf();
                FExpr::Bin(BinOp::Mul, bx(m()), bx(y))
            }
            2 => FExpr::Bin(BinOp::Mul, bx(m()), bx(m())),
            3 => {
                let f = *self.rng.pick(&[Fn1::Sin, Fn1::Exp, Fn1::Tanh, Fn1::Cos]);
                FExpr::Call1(f, bx(m()))
            }
            4 => {
                // let mut se: f64 = 0.0; for j in 0..a.len() { se += (a[j] - m).exp(); }
                let se = self.fresh_name(&["se", "denom", "norm"]);
                out.push(Stmt::Let {
                    name: se.clone(),
                    mutable: true,
                    annotate: true,
                    init: FExpr::Lit(0.0),
                });
                let j = self.fresh_int_name();
                let end = if self.rng.chance(0.8) {
                    IExpr::Len(sel.arr.clone())
                } else {
                    IExpr::Lit(sel.len)
                };
                let term = FExpr::Call1(
                    Fn1::Exp,
                    bx(FExpr::Bin(
                        BinOp::Sub,
                        bx(FExpr::Index(sel.arr.clone(), IExpr::Var(j.clone()))),
                        bx(m()),
                    )),
                );
                out.push(Stmt::For {
                    var: j,
                    start: IExpr::Lit(0),
                    end,
                    rev: false,
                    body: Block {
                        stmts: vec![Stmt::Assign {
                            place: Place::Var(se.clone()),
                            op: AssignOp::Compound(BinOp::Add),
                            value: term,
                        }],
                        tail: None,
                    },
                });
                self.declare_hidden(&se, true);
                let ln = FExpr::Call1(Fn1::Ln, bx(FExpr::Var(se)));
                if self.rng.chance(0.5) {
                    FExpr::Bin(BinOp::Add, bx(ln), bx(m()))
                } else {
                    FExpr::Bin(BinOp::Add, bx(m()), bx(ln))
                }
            }
            5 => {
                let y = self.var_leaf();
                FExpr::Call1(Fn1::Exp, bx(FExpr::Bin(BinOp::Sub, bx(m()), bx(y))))
            }
            _ => {
                let bn = sel.best.clone().expect("an argmax");
                let ws: Vec<Arr> = self
                    .arrs()
                    .into_iter()
                    .filter(|a| a.len >= sel.len)
                    .collect();
                match ws.is_empty() {
                    true => m(),
                    false => {
                        let w = self.rng.pick(&ws).name.clone();
                        let at = FExpr::Index(w, IExpr::Var(bn.clone()));
                        match self.rng.below(3) {
                            0 => FExpr::Bin(
                                BinOp::Add,
                                bx(FExpr::Bin(BinOp::Mul, bx(m()), bx(at))),
                                bx(FExpr::Call1(Fn1::Sin, bx(m()))),
                            ),
                            1 => FExpr::Bin(BinOp::Mul, bx(at), bx(m())),
                            _ => FExpr::Bin(
                                BinOp::Add,
                                bx(FExpr::Bin(BinOp::Mul, bx(at), bx(m()))),
                                bx(FExpr::Bin(
                                    BinOp::Mul,
                                    bx(FExpr::Lit(0.5)),
                                    bx(FExpr::Cast(IExpr::Var(bn))),
                                )),
                            ),
                        }
                    }
                }
            }
        };
        for x in &sel.extras {
            let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub]);
            u = FExpr::Bin(op, bx(u), bx(x.clone()));
        }
        u
    }

    // ---------------------------------------------------------------------------------------
    // Conditions and indices.
    // ---------------------------------------------------------------------------------------

    fn cond(&mut self) -> Cond {
        match self.rng.below(12) {
            0 => Cond::And(Box::new(self.cond_cmp(1)), Box::new(self.cond_cmp(1))),
            1 => Cond::Or(Box::new(self.cond_cmp(1)), Box::new(self.cond_cmp(1))),
            2 => Cond::Not(Box::new(self.cond_cmp(2))),
            3 if !self.ints().is_empty() => {
                let ints = self.ints();
                let v = self.rng.pick(&ints).clone();
                let k = self.rng.range(v.lo, v.hi);
                let mut op = *self.rng.pick(&CMPS);
                if k == 0 {
                    // `i >= 0` and `i < 0` are always true or false for a usize (a lint).
                    op = *self.rng.pick(&[CmpOp::Gt, CmpOp::Le]);
                }
                let int = Cond::ICmp(op, IExpr::Var(v.name), IExpr::Lit(k));
                Cond::And(Box::new(int), Box::new(self.cond_cmp(1)))
            }
            _ => self.cond_cmp(2),
        }
    }

    /// An active comparison, usually against a literal that splits typical values.
    fn cond_cmp(&mut self, depth: u32) -> Cond {
        let a = self.operand(depth);
        let mut b = if self.rng.chance(0.6) {
            FExpr::Lit(self.rng.uniform(-1.5, 1.5).mul_add(8.0, 0.0).round() / 8.0)
        } else {
            self.operand(depth)
        };
        if b == a {
            // `x < x` sits on its own boundary at every input.
            b = FExpr::Lit(0.5);
        }
        Cond::Cmp(*self.rng.pick(&CMPS), a, b)
    }

    /// An index that is in bounds for `a`, from constants and the loop indices in scope.
    fn index(&mut self, a: &Arr) -> IExpr {
        let len = a.len;
        let ints = self.ints();
        if self.feat.fused_loops {
            // In a fused loop, mostly `a[i + k]`: the loads whose adjoints are carried in
            // registers from one iteration to the next.
            let fused = self
                .fused_index
                .as_ref()
                .and_then(|i| ints.iter().rev().find(|v| v.name == *i));
            if let Some(v) = fused {
                if v.hi < len && self.rng.chance(0.5) {
                    let k = self.rng.range(0, (len - 1 - v.hi).min(2));
                    return self.plus(&v.name.clone(), k);
                }
            }
        }
        let fits: Vec<&IVar> = ints.iter().filter(|v| v.hi < len).collect();
        let mut options: Vec<IExpr> = vec![IExpr::Lit(self.rng.below(len))];
        if self.feat.fused_loops {
            for v in &ints {
                for k in 1..=2 {
                    if v.hi + k < len {
                        options.push(IExpr::Add(
                            Box::new(IExpr::Var(v.name.clone())),
                            Box::new(IExpr::Lit(k)),
                        ));
                    }
                }
            }
        }
        for v in &fits {
            let var = || Box::new(IExpr::Var(v.name.clone()));
            options.push(IExpr::Var(v.name.clone()));
            options.push(IExpr::Var(v.name.clone()));
            // len - 1 - i
            options.push(IExpr::Sub(
                Box::new(IExpr::Sub(
                    Box::new(IExpr::Len(a.name.clone())),
                    Box::new(IExpr::Lit(1)),
                )),
                var(),
            ));
            if v.lo >= 1 {
                options.push(IExpr::Sub(var(), Box::new(IExpr::Lit(1))));
            }
        }
        for v in &ints {
            let var = Box::new(IExpr::Var(v.name.clone()));
            // (i + c) % len: in bounds for any i.
            options.push(IExpr::Rem(
                Box::new(IExpr::Add(var, Box::new(IExpr::Lit(self.rng.range(1, 2))))),
                Box::new(IExpr::Len(a.name.clone())),
            ));
            if v.hi / 2 < len {
                options.push(IExpr::Div(
                    Box::new(IExpr::Var(v.name.clone())),
                    Box::new(IExpr::Lit(2)),
                ));
            }
        }
        let k = self.rng.below(options.len());
        options.swap_remove(k)
    }

    // ---------------------------------------------------------------------------------------
    // Expressions.
    // ---------------------------------------------------------------------------------------

    /// A leaf: a variable, an array element, a literal, or a loop index as a float.
    fn leaf(&mut self) -> FExpr {
        let floats = self.floats();
        let arrs = self.arrs();
        let ints = self.ints();
        let weights = [
            if floats.is_empty() { 0 } else { 12 },
            match (arrs.is_empty(), self.fused_index.is_some()) {
                (true, _) => 0,
                (false, false) => 5,
                // Loads `x[i + k]` are what fused loops do with slices.
                (false, true) => 10,
            },
            3,
            if ints.is_empty() { 0 } else { 1 },
        ];
        match self.rng.weighted(&weights) {
            0 => FExpr::Var(self.read_float().expect("a float is in scope")),
            1 => self.read_elem(),
            2 => FExpr::Lit(*self.rng.pick(&LITERALS)),
            _ => FExpr::Cast(IExpr::Var(self.rng.pick(&ints).name.clone())),
        }
    }

    /// A leaf that is not a constant: every function has a float parameter or a slice.
    fn var_leaf(&mut self) -> FExpr {
        for _ in 0..8 {
            let e = self.leaf();
            if !is_const(&e) {
                return e;
            }
        }
        if let Some(v) = self.read_float() {
            return FExpr::Var(v);
        }
        let a = self.arrs()[0].clone();
        FExpr::Index(a.name, IExpr::Lit(0))
    }

    /// An expression that is not a constant (a method receiver or a comparison operand:
    /// `2.0.sin()` does not compile, and a constant condition is no branch).
    fn operand(&mut self, depth: u32) -> FExpr {
        let e = self.expr(depth);
        if is_const(&e) {
            self.var_leaf()
        } else {
            e
        }
    }

    fn expr(&mut self, depth: u32) -> FExpr {
        if depth == 0 || self.rng.chance(0.3) {
            return self.leaf();
        }
        let d = depth - 1;
        let calls = !self.callees.is_empty() && !self.no_calls;
        let weights = [
            30,                        // 0 + - *
            8,                         // 1 division
            4,                         // 2 negation
            22,                        // 3 unary intrinsic
            5,                         // 4 powi
            10,                        // 5 binary intrinsic
            if calls { 8 } else { 0 }, // 6 call
            if self.feat.branches && depth >= 2 && !self.in_if_expr && !self.no_if_expr {
                3
            } else {
                0
            }, // 7 if expression
            if self.feat.extra_intrinsics { 3 } else { 0 }, // 8 mul_add, clamp, %
        ];
        match self.rng.weighted(&weights) {
            0 => {
                let op = *self.rng.pick(&[BinOp::Add, BinOp::Sub, BinOp::Mul]);
                let a = self.expr(d);
                let mut b = self.expr(d);
                if op == BinOp::Sub && a == b {
                    // `x - x` is a constant zero, and a kink of everything after it.
                    b = FExpr::Lit(0.5);
                }
                FExpr::Bin(op, Box::new(a), Box::new(b))
            }
            1 => {
                let num = self.expr(d);
                let den = self.expr(d);
                let strict = self.rng.chance(0.75);
                let den = self.positive(den, strict);
                FExpr::Bin(BinOp::Div, Box::new(num), Box::new(den))
            }
            2 => FExpr::Neg(Box::new(self.operand(d))),
            3 => self.unary(d),
            4 => {
                let n = *self.rng.pick(&[2, 3, 2, -1, -2, 4, 0, 1]);
                let x = self.operand(d);
                let x = if n < 0 { self.positive(x, true) } else { x };
                FExpr::Powi(Box::new(x), n)
            }
            5 => self.binary(d),
            6 => {
                let (name, arity) = self.rng.pick(&self.callees).clone();
                let args = (0..arity).map(|_| self.expr(d)).collect();
                FExpr::Call(name, args)
            }
            7 => {
                self.pure = true;
                let e = self.if_expr();
                self.pure = false;
                e
            }
            _ => self.ternary(d),
        }
    }

    fn unary(&mut self, d: u32) -> FExpr {
        let common = [
            Fn1::Sin,
            Fn1::Cos,
            Fn1::Tan,
            Fn1::Exp,
            Fn1::Ln,
            Fn1::Sqrt,
            Fn1::Tanh,
            Fn1::Abs,
        ];
        let extra = [
            Fn1::Asin,
            Fn1::Acos,
            Fn1::Atan,
            Fn1::Sinh,
            Fn1::Cosh,
            Fn1::Asinh,
            Fn1::Acosh,
            Fn1::Atanh,
            Fn1::Exp2,
            Fn1::ExpM1,
            Fn1::Ln1p,
            Fn1::Log2,
            Fn1::Log10,
            Fn1::Cbrt,
            Fn1::Recip,
            Fn1::Signum,
            Fn1::ToRadians,
            Fn1::ToDegrees,
            Fn1::Floor,
            Fn1::Ceil,
            Fn1::Round,
            Fn1::Trunc,
            Fn1::Fract,
        ];
        let f = if self.feat.extra_intrinsics && self.rng.chance(0.35) {
            *self.rng.pick(&extra)
        } else {
            *self.rng.pick(&common)
        };
        let x = self.operand(d);
        let x = match f {
            Fn1::Ln | Fn1::Sqrt | Fn1::Log2 | Fn1::Log10 | Fn1::Ln1p => self.positive(x, true),
            Fn1::Recip => {
                let strict = self.rng.chance(0.7);
                self.positive(x, strict)
            }
            Fn1::Acosh => FExpr::Bin(
                BinOp::Add,
                Box::new(FExpr::Lit(1.0)),
                Box::new(self.positive(x, true)),
            ),
            Fn1::Asin | Fn1::Acos | Fn1::Atanh => self.unit(x),
            Fn1::Tan => self.small(x),
            Fn1::Exp | Fn1::Exp2 | Fn1::ExpM1 | Fn1::Sinh | Fn1::Cosh => {
                if is_leaf(&x) {
                    x
                } else {
                    self.bounded(x)
                }
            }
            _ => x,
        };
        FExpr::Call1(f, Box::new(x))
    }

    fn binary(&mut self, d: u32) -> FExpr {
        let mut fns = vec![Fn2::Powf, Fn2::Atan2, Fn2::Hypot, Fn2::Max, Fn2::Min];
        if self.feat.extra_intrinsics {
            fns.extend([Fn2::Log, Fn2::Copysign]);
        }
        let f = *self.rng.pick(&fns);
        let x = self.operand(d);
        let y = self.expr(d);
        let (x, y) = match f {
            Fn2::Powf => {
                let base = self.positive(x, true);
                let exp = if self.rng.chance(0.4) {
                    FExpr::Lit(*self.rng.pick(&[0.5, 1.5, 2.5, -0.5, 3.0, 0.3]))
                } else {
                    self.bounded(y)
                };
                (base, exp)
            }
            Fn2::Log => {
                let base = if self.rng.chance(0.5) {
                    FExpr::Lit(*self.rng.pick(&[2.0, 10.0, 3.0, 0.5]))
                } else {
                    FExpr::Bin(
                        BinOp::Add,
                        Box::new(FExpr::Lit(1.5)),
                        Box::new(self.positive(y, true)),
                    )
                };
                (self.positive(x, true), base)
            }
            // `y.min(y)` is a tie at every input.
            Fn2::Max | Fn2::Min | Fn2::Atan2 | Fn2::Hypot if y == x => (x, FExpr::Lit(0.5)),
            _ => (x, y),
        };
        FExpr::Call2(f, Box::new(x), Box::new(y))
    }

    fn ternary(&mut self, d: u32) -> FExpr {
        match self.rng.below(3) {
            0 => {
                let x = self.operand(d);
                FExpr::Call3(
                    Fn3::MulAdd,
                    Box::new(x),
                    Box::new(self.expr(d)),
                    Box::new(self.expr(d)),
                )
            }
            1 => {
                let x = self.operand(d);
                let lo = self.rng.uniform(-1.5, 0.5).mul_add(4.0, 0.0).round() / 4.0;
                let hi = lo + *self.rng.pick(&[0.5, 1.0, 1.5]);
                FExpr::Call3(
                    Fn3::Clamp,
                    Box::new(x),
                    Box::new(FExpr::Lit(lo)),
                    Box::new(FExpr::Lit(hi)),
                )
            }
            _ => {
                let a = self.expr(d);
                let b = self.expr(d);
                FExpr::Bin(BinOp::Rem, Box::new(a), Box::new(self.positive(b, true)))
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Domain wrappers.
    // ---------------------------------------------------------------------------------------

    /// An expression that is positive (bounded away from zero) when `strict`; otherwise `e`
    /// itself, left to the harness's checks (a division by a plain value).
    fn positive(&mut self, e: FExpr, strict: bool) -> FExpr {
        if !strict && !is_const(&e) {
            return e;
        }
        if is_const(&e) {
            return FExpr::Lit(*self.rng.pick(&[0.5, 2.0, 1.5, 4.0]));
        }
        let b = Box::new;
        let lit = |v| Box::new(FExpr::Lit(v));
        // Only leaves are duplicated (`e * e`): duplicating trees doubles the program.
        let k = if is_leaf(&e) {
            self.rng.below(7)
        } else {
            1 + self.rng.below(5)
        };
        match k {
            // e * e + 1.0
            0 => FExpr::Bin(
                BinOp::Add,
                b(FExpr::Bin(BinOp::Mul, b(e.clone()), b(e))),
                lit(1.0),
            ),
            // e.abs() + 0.5
            1 => FExpr::Bin(BinOp::Add, b(FExpr::Call1(Fn1::Abs, b(e))), lit(0.5)),
            2 => {
                let e = if is_leaf(&e) { e } else { self.bounded(e) };
                FExpr::Call1(Fn1::Exp, b(e))
            }
            // 1.5 + e.sin()
            3 => FExpr::Bin(BinOp::Add, lit(1.5), b(FExpr::Call1(Fn1::Sin, b(e)))),
            4 => FExpr::Call2(Fn2::Hypot, b(e), lit(1.0)),
            // e.powi(2) + 0.25
            5 => FExpr::Bin(BinOp::Add, b(FExpr::Powi(b(e), 2)), lit(0.25)),
            6 => {
                let e = if is_leaf(&e) { e } else { self.bounded(e) };
                FExpr::Call1(Fn1::Cosh, b(e))
            }
            _ => unreachable!("k < 7"),
        }
    }

    /// An expression with values strictly inside (-1, 1).
    fn unit(&mut self, e: FExpr) -> FExpr {
        let b = Box::new;
        let lit = |v| Box::new(FExpr::Lit(v));
        let k = if is_leaf(&e) {
            self.rng.below(4)
        } else {
            self.rng.below(3)
        };
        match k {
            0 => FExpr::Bin(BinOp::Mul, b(FExpr::Call1(Fn1::Sin, b(e))), lit(0.9)),
            1 => FExpr::Bin(BinOp::Mul, b(FExpr::Call1(Fn1::Tanh, b(e))), lit(0.95)),
            2 => FExpr::Bin(BinOp::Mul, lit(0.5), b(FExpr::Call1(Fn1::Cos, b(e)))),
            // e / (e.abs() + 1.0)
            _ => FExpr::Bin(
                BinOp::Div,
                b(e.clone()),
                b(FExpr::Bin(
                    BinOp::Add,
                    b(FExpr::Call1(Fn1::Abs, b(e))),
                    lit(1.0),
                )),
            ),
        }
    }

    /// An expression with values inside (-1.2, 1.2), for `tan`.
    fn small(&mut self, e: FExpr) -> FExpr {
        let b = Box::new;
        match self.rng.below(3) {
            0 => FExpr::Call1(Fn1::Sin, b(e)),
            1 => FExpr::Call1(Fn1::Tanh, b(e)),
            _ => FExpr::Bin(
                BinOp::Mul,
                b(FExpr::Lit(1.1)),
                b(FExpr::Call1(Fn1::Cos, b(e))),
            ),
        }
    }

    /// An expression of moderate size: leaves stay, everything else is squashed.
    fn bounded(&mut self, e: FExpr) -> FExpr {
        if is_const(&e) {
            return e;
        }
        let b = Box::new;
        match self.rng.below(4) {
            0 => FExpr::Call1(Fn1::Sin, b(e)),
            1 => FExpr::Call1(Fn1::Cos, b(e)),
            2 => FExpr::Call1(Fn1::Tanh, b(e)),
            _ => FExpr::Bin(
                BinOp::Mul,
                b(FExpr::Lit(2.0)),
                b(FExpr::Call1(Fn1::Tanh, b(e))),
            ),
        }
    }
}

const CMPS: [CmpOp; 4] = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];

/// `Box::new` for any type (a closure `let b = Box::new;` has one).
fn bx<T>(t: T) -> Box<T> {
    Box::new(t)
}

/// `a < b` as `b > a`: the same comparison with its operands swapped.
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
    }
}

/// The comparison that is true where `op` is false.
fn negate(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Ge => CmpOp::Lt,
    }
}

/// How the loops of a run index the memory they share.
#[derive(Clone, Debug, PartialEq, Eq)]
enum JamKey {
    /// `a[j]`.
    Plain,
    /// `a[j + 1]` (or, with `true`, `a[1 + j]`), over `0..n - 1`.
    PlusOne(bool),
    /// `a[off + j]` (or, with `true`, `a[j + off]`) with `let off = 1;`, over `0..n - off`.
    Base(String, bool),
}

impl JamKey {
    fn at(&self, j: &str) -> IExpr {
        let jv = bx(IExpr::Var(j.to_string()));
        match self {
            JamKey::Plain => *jv,
            JamKey::PlusOne(false) => IExpr::Add(jv, bx(IExpr::Lit(1))),
            JamKey::PlusOne(true) => IExpr::Add(bx(IExpr::Lit(1)), jv),
            JamKey::Base(b, false) => IExpr::Add(bx(IExpr::Var(b.clone())), jv),
            JamKey::Base(b, true) => IExpr::Add(jv, bx(IExpr::Var(b.clone()))),
        }
    }
}

/// What one loop of a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JamRole {
    /// Stores a new buffer from the inputs: `a[j] = .. x[j] ..`.
    Produce,
    /// Stores a new buffer from earlier ones: `b[j] = .. a[j] ..`.
    Map,
    /// Accumulates earlier buffers into a new scalar: `t += .. a[j] ..`.
    Acc,
    /// Overwrites the buffer the first loop read: `y[j] = .. y[j] .. a[j] ..`.
    Over,
}

/// A run of jammable loops being generated.
struct JamRun {
    /// The length of its buffers.
    len: usize,
    /// Arrays it only reads, each at least `len` long.
    inputs: Vec<Arr>,
    /// The buffer the first loop reads (at the shared index) and a later one overwrites.
    over: Option<String>,
    /// The index of shared memory.
    key: JamKey,
    /// The buffers stored by the loops so far.
    produced: Vec<String>,
}

/// One loop of a run.
struct JamLoop {
    role: JamRole,
    /// The buffer or accumulator it writes.
    dst: String,
    /// The range of its index (inclusive).
    lo: usize,
    hi: usize,
    /// Near miss: it reads the earlier buffer at `j + 1` (`true`) or `j - 1`.
    neighbour: Option<bool>,
    /// Near miss: it reads the earlier buffer at `len - 1 - j`.
    mirror: bool,
    /// Near miss: the scalar the first loop accumulates (`true`) and the second reads.
    carried: Option<(String, bool)>,
    /// Near miss: a scalar it reads, assigned after it.
    reads: Option<String>,
    /// Near miss: it writes an earlier loop's buffer too.
    both: bool,
    /// Near miss: it ends in `if j >= k { break; }`.
    brk: bool,
}

/// Runs of loops that `#[gradient]` must not jam as a whole (each differs from one in one way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JamMiss {
    /// The second loop reads the first's buffer at `j + 1` (over `0..n - 1`) or `j - 1` (over
    /// `1..n`).
    Neighbour,
    /// The first loop accumulates a scalar that the second reads.
    Carried,
    /// A later loop's range differs: `1..n` after `0..n`, or the same value spelt otherwise
    /// (`0..s.len()` after `0..3`).
    Bounds,
    /// A later loop writes an earlier loop's buffer too.
    BothWrite,
    /// A statement between two loops reads an element the loop before wrote, assigns a scalar
    /// it read, or reads its accumulator.
    Dependent,
    /// The second loop reads the first's buffer at `len - 1 - j`.
    Mirror,
    /// One loop is `.rev()`.
    Reversed,
    /// One loop has a `break`.
    Break,
    /// The range is `0..a.len()` of the buffer the first loop writes.
    LenOfWritten,
    /// A later loop's buffer is declared between the loops.
    DeclBetween,
}

const JAM_MISSES: [JamMiss; 10] = [
    JamMiss::Neighbour,
    JamMiss::Carried,
    JamMiss::Bounds,
    JamMiss::BothWrite,
    JamMiss::Dependent,
    JamMiss::Mirror,
    JamMiss::Reversed,
    JamMiss::Break,
    JamMiss::LenOfWritten,
    JamMiss::DeclBetween,
];

/// What a selection loop selected, for the code after it.
struct Selected {
    /// The selected variable.
    var: String,
    /// The array it selects from, and its length.
    arr: String,
    len: usize,
    /// The argmax index set beside the copy, if any (in `0..len`).
    best: Option<String>,
    /// Other values the loop computed (near misses, counters): added to the result linearly.
    extras: Vec<FExpr>,
}

/// Selection loops that `#[gradient]` must not rewrite (each differs from one in one way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NearMiss {
    /// The copy is `a[i] + 0.0` (or `- 0.0`): not a plain element copy.
    PlusZero,
    /// The copy is `a[i] * 1.0` or `1.0 * a[i]`.
    TimesOne,
    /// A second float assignment in the loop (a count of copies, a sum of the elements).
    SecondAssign,
    /// The selected value read by float code in the loop (`let d = a[i] - m;`, a running
    /// sum of `m`, the runner-up `second = m`).
    ReadInLoop,
    /// A `break` in the loop (integer, before the copy, or active, after it).
    Break,
    /// A `while` loop instead of a `for`.
    While,
    /// Maximum and minimum in one loop: `if .. { mx = a[i]; } else if .. { mn = a[i]; }`.
    MinMax,
}

const NEAR_MISSES: [NearMiss; 7] = [
    NearMiss::PlusZero,
    NearMiss::TimesOne,
    NearMiss::SecondAssign,
    NearMiss::ReadInLoop,
    NearMiss::Break,
    NearMiss::While,
    NearMiss::MinMax,
];

/// True when `e` reads no variable: its type would be `{float}` and it has no derivative.
pub fn is_const(e: &FExpr) -> bool {
    match e {
        FExpr::Lit(_) | FExpr::Cast(_) => true,
        FExpr::Var(_) | FExpr::Index(..) | FExpr::Call(..) => false,
        // Its type is that of its values: `if c { 1.0 } else { 2.0 }` is a `{float}`.
        FExpr::If(arms, els) => {
            arms.iter()
                .all(|(_, b)| b.tail.as_ref().is_none_or(is_const))
                && els.tail.as_ref().is_none_or(is_const)
        }
        FExpr::Neg(x) | FExpr::Call1(_, x) | FExpr::Powi(x, _) => is_const(x),
        FExpr::Bin(_, a, b) | FExpr::Call2(_, a, b) => is_const(a) && is_const(b),
        FExpr::Call3(_, a, b, c) => is_const(a) && is_const(b) && is_const(c),
    }
}

/// `e` with `a.len()` written as the number `len`.
fn len_as_literal(e: IExpr, a: &str, len: usize) -> IExpr {
    let sub = |e: Box<IExpr>| Box::new(len_as_literal(*e, a, len));
    match e {
        IExpr::Len(b) if b == a => IExpr::Lit(len),
        IExpr::Add(x, y) => IExpr::Add(sub(x), sub(y)),
        IExpr::Sub(x, y) => IExpr::Sub(sub(x), sub(y)),
        IExpr::Mul(x, y) => IExpr::Mul(sub(x), sub(y)),
        IExpr::Div(x, y) => IExpr::Div(sub(x), sub(y)),
        IExpr::Rem(x, y) => IExpr::Rem(sub(x), sub(y)),
        other => other,
    }
}

fn is_leaf(e: &FExpr) -> bool {
    matches!(e, FExpr::Var(_) | FExpr::Index(..) | FExpr::Lit(_))
}

#[cfg(test)]
mod tests {
    use super::super::ast::{Mode, Printer};
    use super::*;

    #[test]
    fn the_same_seed_and_index_give_the_same_program() {
        let f = Features::preset("all").unwrap();
        for i in 0..50 {
            assert_eq!(program(7, i, &f), program(7, i, &f));
        }
        assert_ne!(program(7, 1, &f), program(7, 2, &f));
        assert_ne!(program(7, 1, &f), program(8, 1, &f));
    }

    fn source(p: &Program) -> String {
        let mut out = Printer::new(Mode::Plain);
        for func in &p.functions {
            out.function(func, true, false);
        }
        out.finish()
    }

    #[test]
    fn fused_loops_and_their_near_misses_appear() {
        let f = Features::preset("all").unwrap();
        let all: String = (0..400).map(|i| source(&program(5, i, &f))).collect();
        for shape in [
            "= vec![0.0",     // a private buffer, declared before the loop
            " = [0.0; ",      // the same, as a bare array
            "[i + 1]",        // loads carried in registers
            "[i + 2]",        //
            "[1 + i]",        //
            ".len() - 2 {",   // the range that keeps them in bounds
            "in (j + 1)..",   // an elimination step on a private buffer
            "if i < s.len()", // guarded loads in a longer range (near miss)
            "sum += ",        // accumulators
            "sum -= ",        //
            "sum = sum - ",   //
            ".rev() {",       //
        ] {
            assert!(all.contains(shape), "`{shape}` never appears");
        }
        let slices = Features::preset("slices").unwrap();
        for i in 0..100 {
            let p = program(5, i, &slices);
            assert!(!source(&p).contains("vec!["));
            // Without the feature, the programs of the lower levels are unchanged.
            let mut no_fused = f;
            no_fused.fused_loops = false;
            no_fused.selection_loops = false;
            no_fused.row_loops = false;
            no_fused.jammed_loops = false;
            assert_eq!(
                program(5, i, &no_fused),
                program(5, i, &Features::parse("slices,loop_return").unwrap())
            );
        }
    }

    #[test]
    fn selection_loops_and_their_near_misses_appear() {
        // (Without runs of jammable loops, which change the draws after them: the shapes
        // below were listed for these programs.)
        let f = Features::parse("all,-jammed_loops").unwrap();
        let (mut sel, mut near) = (0, 0);
        let mut all = String::new();
        for i in 0..1000 {
            let (s, n) = selection_loops(5, i, &f);
            sel += s;
            near += n;
            if s + n > 0 {
                all.push_str(&source(&program(5, i, &f)));
            }
        }
        eprintln!("1000 programs: {sel} selection loops, {near} near misses");
        assert!((60..=200).contains(&sel), "{sel} selection loops");
        assert!((15..=100).contains(&near), "{near} near misses");
        for shape in [
            " = s[i];",               // the copy
            " = s[s.len() - 1 - i];", // at a reversed index
            "(0..s.len() - 1).rev()", // a reversed range
            " = i;",                  // an argmax
            " + 0.0;",                // near misses: not a plain copy
            " * 1.0;",                //
            "1.0 * s[",               //
            "break;",                 // an exit
            "} else if ",             // maximum and minimum in one loop
            "while i < ",             // a `while` loop
            ".ln() + ",               // a log-sum-exp after the loop
            ".exp() > ",              // a comparison through an expression
            "!(",                     //
            "+ 4.0;",                 // a start value no element beats
            " = -1000.0;",            // a start value every element beats
        ] {
            assert!(all.contains(shape), "`{shape}` never appears");
        }
        let mut off = f;
        off.selection_loops = false;
        for i in 0..200 {
            assert_eq!(selection_loops(5, i, &off), (0, 0));
        }
    }

    #[test]
    fn row_loops_and_their_near_misses_appear() {
        let f = Features::preset("all").unwrap();
        let (mut rows, mut near) = (0, 0);
        let mut all = String::new();
        for i in 0..1000 {
            let (r, n) = row_loops(5, i, &f);
            rows += r;
            near += n;
            if r + n > 0 {
                all.push_str(&source(&program(5, i, &f)));
            }
        }
        if let Ok(path) = std::env::var("AD_ROW_SAMPLE") {
            std::fs::write(path, &all).unwrap();
        }
        eprintln!("1000 programs: {rows} row loops, {near} near misses");
        assert!((60..=300).contains(&rows), "{rows} row loops");
        assert!((15..=150).contains(&near), "{near} near misses");
        // An empty range: `for j in cols..cols`, `for j in r..r`, `for j in b..b`.
        let empty = all.lines().any(|l| {
            let l = l.trim();
            l.strip_prefix("for ")
                .and_then(|l| l.split_once(" in "))
                .and_then(|(_, r)| r.strip_suffix(" {"))
                .and_then(|r| r.split_once(".."))
                .is_some_and(|(a, b)| a == b)
        });
        assert!(empty, "no empty range");
        for shape in [
            " * cols + ",           // a row of a matrix
            " * cols + col",        // a column
            " = vec![0.0",          // a local buffer
            "let l = ",             // a counter set first
            " / 2 + (",             // a packed triangle
            " + 1)..",              // a range from an outer index
            "(0..cols).rev()",      // a reversed inner range
            " += 1;",               // near misses: a base or counter that changes
            "break;",               //
            "if j < cols {",        // a guarded access in a longer range
            ".len() - q.len() + 1", // a convolution
        ] {
            assert!(all.contains(shape), "`{shape}` never appears");
        }
        let mut off = f;
        off.row_loops = false;
        for i in 0..200 {
            assert_eq!(row_loops(5, i, &off), (0, 0));
        }
    }

    /// Pairs of adjacent `for` loops over the same range in `src` (the closing `}` of one
    /// followed by the header of the next at the same indentation), at any depth.
    fn adjacent_loops(src: &str) -> usize {
        let lines: Vec<&str> = src.lines().collect();
        let range = |l: &str| {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            t.strip_prefix("for ")
                .and_then(|r| r.split_once(" in "))
                .and_then(|(_, r)| r.strip_suffix(" {"))
                .map(|r| (indent, r.to_string()))
        };
        let mut n = 0;
        for (k, l) in lines.iter().enumerate() {
            let Some((indent, r)) = range(l) else {
                continue;
            };
            let close = lines[k + 1..]
                .iter()
                .position(|m| m.len() - m.trim_start().len() == indent && m.trim() == "}");
            let next = close
                .and_then(|c| lines.get(k + 2 + c))
                .and_then(|m| range(m));
            if next == Some((indent, r)) {
                n += 1;
            }
        }
        n
    }

    #[test]
    fn jammed_loops_and_their_near_misses_appear() {
        let f = Features::preset("all").unwrap();
        let (mut runs, mut near, mut pairs) = (0, 0, 0);
        let mut all = String::new();
        for i in 0..1000 {
            let (r, n) = jammed_loops(5, i, &f);
            runs += r;
            near += n;
            if r + n > 0 {
                let src = source(&program(5, i, &f));
                pairs += adjacent_loops(&src);
                all.push_str(&src);
            }
        }
        if let Ok(path) = std::env::var("AD_JAM_SAMPLE") {
            std::fs::write(path, &all).unwrap();
        }
        eprintln!("1000 programs: {runs} jammed runs, {near} near misses, {pairs} adjacent pairs");
        assert!((200..=700).contains(&runs), "{runs} jammed runs");
        assert!((80..=400).contains(&near), "{near} near misses");
        // (Statements between the loops, and the bounds' `let`s, hide some from this count.)
        assert!(
            2 * pairs >= runs,
            "{pairs} pairs of adjacent loops over the same range"
        );
        for shape in [
            "in 0..n {",             // a range through a name
            "in 1..",                // from 1
            ".len() - 1 {",          // shrunk for `a[j + 1]`
            "[j + 1] = ",            // shared memory at an offset
            "[off + j] = ",          //
            "[j + off]",             //
            "[j - 1]",               // near misses: a neighbour
            "[j + 1];",              //
            ").rev() {",             // a reversed loop
            "break;",                // an exit
            " = vec![0.0",           // buffers as `Vec`s and arrays
            " = [0.0; ",             //
            " += ",                  // accumulators
            "let mut t: f64 = 0.0;", //
        ] {
            assert!(all.contains(shape), "`{shape}` never appears");
        }
        let mut off = f;
        off.jammed_loops = false;
        for i in 0..200 {
            assert_eq!(jammed_loops(5, i, &off), (0, 0));
            assert_eq!(jam_calls(5, i, &off), [0; 3]);
        }
    }

    #[test]
    fn jammed_loops_call_helpers() {
        let f = Features::preset("all").unwrap();
        assert!(f.calls && f.jammed_loops);
        let mut counts = [0; 3];
        let (mut by_name, mut by_ref) = (0, 0);
        for i in 0..1000 {
            let c = jam_calls(5, i, &f);
            if c == [0; 3] {
                continue;
            }
            (0..3).for_each(|k| counts[k] += c[k]);
            let p = program(5, i, &f);
            let src = source(&p);
            // Every call in a loop stands in the body of a `for`, and names a helper.
            let helpers: Vec<&str> = p.functions[..p.functions.len() - 1]
                .iter()
                .map(|h| h.name.as_str())
                .collect();
            assert!(!helpers.is_empty(), "program {i} calls no helper:\n{src}");
            let calls_in_loops = src
                .lines()
                .filter(|l| {
                    l.starts_with("        ")
                        && helpers.iter().any(|h| l.contains(&format!("{h}(")))
                })
                .count();
            assert!(
                calls_in_loops > 0,
                "program {i} has no call in a loop:\n{src}"
            );
            // Slices passed whole: a parameter by name (`g1(s, ..)`, `g1(x, s)`), a buffer by
            // reference (`g1(&h, ..)`).
            for h in &helpers {
                by_name += src.matches(&format!("{h}(s,")).count()
                    + src.matches(&format!("{h}(s)")).count();
            }
            by_name += src.matches(", s)").count() + src.matches(", s,").count();
            by_ref += src.matches("(&").count() + src.matches(", &").count();
        }
        eprintln!("1000 programs: calls in jammed runs {counts:?} (floats, read-only slice, written buffer)");
        assert!(counts[0] >= 20, "{counts:?}");
        assert!(counts[1] >= 20, "{counts:?}");
        assert!(counts[2] >= 5, "{counts:?}");
        assert!(
            by_name > 0 && by_ref > 0,
            "{by_name} slices by name, {by_ref} by reference"
        );
        // Without calls, none.
        let mut off = f;
        off.calls = false;
        for i in 0..300 {
            assert_eq!(jam_calls(5, i, &off), [0; 3]);
            assert!(program(5, i, &off).functions.len() == 1);
        }
    }

    #[test]
    fn features_that_are_off_do_not_appear() {
        let f = Features::preset("straight").unwrap();
        for i in 0..300 {
            let p = program(1, i, &f);
            let mut out = Printer::new(Mode::Plain);
            for func in &p.functions {
                out.function(func, true, false);
            }
            let src = out.finish();
            for word in [
                "if ", "for ", "while ", "return", "&[f64]", "[0.0;", "g0(", "wrt",
            ] {
                assert!(!src.contains(word), "`{word}` in\n{src}");
            }
            assert_eq!(p.functions.len(), 1);
        }
    }
}
