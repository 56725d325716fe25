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
    Program, Stmt,
};
use super::rng::Rng;
use super::Features;

/// Generates program `index` of the campaign `seed`.
pub fn program(seed: u64, index: u64, features: &Features) -> Program {
    let mut g = Gen {
        rng: Rng::for_program(seed, index, 0),
        feat: *features,
        scopes: Vec::new(),
        callees: Vec::new(),
        fresh: 0,
        loop_depth: 0,
        nesting: 0,
        returns_ok: false,
        in_if_expr: false,
        pure: false,
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
    functions.push(g.function("f", true));
    Program { functions }
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
}

/// Names the macro might pick for its own locals: a user using them must not break it.
const HYGIENE_NAMES: [&str; 12] = [
    "x_bar", "f_bar", "tape", "grad", "value", "adj", "y_bar", "ret", "result", "bar", "seed",
    "out",
];

const FLOAT_NAMES: [&str; 10] = ["a", "b", "u", "v", "w", "p", "q", "r", "t", "acc"];

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
        });
    }

    /// The visible float variables: the innermost declaration of each name.
    fn floats(&self) -> Vec<FVar> {
        let mut seen: Vec<FVar> = Vec::new();
        for s in self.scopes.iter().rev() {
            for v in s.floats.iter().rev() {
                if !seen.iter().any(|w| w.name == v.name) {
                    seen.push(v.clone());
                }
            }
        }
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
                .find(|v| v.uses == 0)
                .map(|v| v.name.clone());
            let unread_arr = self.top().arrs.iter().any(|a| a.uses == 0);
            let extra = if let Some(v) = unread_float {
                self.read_named(&v);
                FExpr::Var(v)
            } else if unread_arr {
                let name = self
                    .top()
                    .arrs
                    .iter()
                    .find(|a| a.uses == 0)
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
        if entry && self.feat.slices && self.rng.chance(0.7) {
            let len = self.rng.range(2, 5);
            let at = self.rng.below(params.len() + 1);
            params.insert(at, Param::Slice("s".to_string(), len));
            if self.rng.chance(0.25) {
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
        let body = self.block(n_stmts, true);
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
            if branches { 6 } else { 0 },                 // 4 let with if expression
            if self.returns_ok && self.feat.branches && self.nesting < 3 {
                5
            } else {
                0
            }, // 5 early return
            if loops { 9 } else { 0 },                    // 6 for loop
            if loops { 5 } else { 0 },                    // 7 while loop
            if self.feat.buffers && !deep { 5 } else { 0 }, // 8 local buffer
            if bufs.is_empty() || self.pure { 0 } else { 12 }, // 9 element assignment
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
            _ => {
                let a = self.rng.pick(&bufs).clone();
                let idx = self.index(&a);
                vec![self.assign(Place::Elem(a.name, idx))]
            }
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
        }];
        let arr = Arr {
            name: name.clone(),
            len,
            mutable: true,
            uses: 0,
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
        let fits: Vec<&IVar> = ints.iter().filter(|v| v.hi < len).collect();
        let mut options: Vec<IExpr> = vec![IExpr::Lit(self.rng.below(len))];
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
            if arrs.is_empty() { 0 } else { 5 },
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
        let calls = !self.callees.is_empty();
        let weights = [
            30,                        // 0 + - *
            8,                         // 1 division
            4,                         // 2 negation
            22,                        // 3 unary intrinsic
            5,                         // 4 powi
            10,                        // 5 binary intrinsic
            if calls { 8 } else { 0 }, // 6 call
            if self.feat.branches && depth >= 2 && !self.in_if_expr {
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
