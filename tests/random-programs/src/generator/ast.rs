//! The generated programs as a small syntax tree, and its printer.
//!
//! One tree is printed twice: as the plain `f64` source that goes under `#[gradient]`, and as the
//! same body over the oracle's `Dual<N>` type. The two printings differ only in types, in float
//! literals (`2.0` versus `c::<N>(2.0)`) and in `i as f64`; every operator, method, branch and
//! loop is the same text, so the oracle follows exactly the control flow of the program.

use std::fmt::Write;

/// Which of the two printings to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Plain Rust over `f64`: the program as the user would write it.
    Plain,
    /// The oracle: every float is a `Dual<N>` and every function is generic over `N`.
    Dual,
}

/// A one-argument float method, printed `x.name()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fn1 {
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Exp,
    Exp2,
    ExpM1,
    Ln,
    Ln1p,
    Log2,
    Log10,
    Sqrt,
    Cbrt,
    Recip,
    Abs,
    Acosh,
    Atanh,
    Signum,
    ToRadians,
    ToDegrees,
    Floor,
    Ceil,
    Round,
    Trunc,
    Fract,
}

impl Fn1 {
    pub fn name(self) -> &'static str {
        match self {
            Fn1::Sin => "sin",
            Fn1::Cos => "cos",
            Fn1::Tan => "tan",
            Fn1::Asin => "asin",
            Fn1::Acos => "acos",
            Fn1::Atan => "atan",
            Fn1::Sinh => "sinh",
            Fn1::Cosh => "cosh",
            Fn1::Tanh => "tanh",
            Fn1::Asinh => "asinh",
            Fn1::Exp => "exp",
            Fn1::Exp2 => "exp2",
            Fn1::ExpM1 => "exp_m1",
            Fn1::Ln => "ln",
            Fn1::Ln1p => "ln_1p",
            Fn1::Log2 => "log2",
            Fn1::Log10 => "log10",
            Fn1::Sqrt => "sqrt",
            Fn1::Cbrt => "cbrt",
            Fn1::Recip => "recip",
            Fn1::Abs => "abs",
            Fn1::Acosh => "acosh",
            Fn1::Atanh => "atanh",
            Fn1::Signum => "signum",
            Fn1::ToRadians => "to_radians",
            Fn1::ToDegrees => "to_degrees",
            Fn1::Floor => "floor",
            Fn1::Ceil => "ceil",
            Fn1::Round => "round",
            Fn1::Trunc => "trunc",
            Fn1::Fract => "fract",
        }
    }
}

/// A two-argument float method, printed `x.name(y)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fn2 {
    Powf,
    Atan2,
    Hypot,
    Max,
    Min,
    Log,
    Copysign,
}

impl Fn2 {
    pub fn name(self) -> &'static str {
        match self {
            Fn2::Powf => "powf",
            Fn2::Atan2 => "atan2",
            Fn2::Hypot => "hypot",
            Fn2::Max => "max",
            Fn2::Min => "min",
            Fn2::Log => "log",
            Fn2::Copysign => "copysign",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    fn text(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
    fn prec(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => PREC_ADD,
            BinOp::Mul | BinOp::Div | BinOp::Rem => PREC_MUL,
        }
    }
}

/// A three-argument float method, printed `x.name(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fn3 {
    MulAdd,
    Clamp,
}

impl Fn3 {
    pub fn name(self) -> &'static str {
        match self {
            Fn3::MulAdd => "mul_add",
            Fn3::Clamp => "clamp",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn text(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// `=`, `+=`, `-=`, `*=` or `/=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Compound(BinOp),
}

/// An integer (`usize`) expression: loop indices, counters, array indices. Never active.
#[derive(Clone, Debug, PartialEq)]
pub enum IExpr {
    Lit(usize),
    Var(String),
    /// `a.len()` of a slice or local array.
    Len(String),
    Add(Box<IExpr>, Box<IExpr>),
    Sub(Box<IExpr>, Box<IExpr>),
    /// `a * b` (row-major indices: `r * cols + j`).
    Mul(Box<IExpr>, Box<IExpr>),
    Div(Box<IExpr>, Box<IExpr>),
    Rem(Box<IExpr>, Box<IExpr>),
}

/// The index of an [`FExpr::Index`] that stands for a whole slice passed by name to a call of
/// a helper taking a slice (`g1(s, x)`, of a slice parameter), printed without brackets. (An
/// index rather than a variant of its own, so that the shrinker's scope checks see an array.)
pub const WHOLE: usize = usize::MAX;

/// As [`WHOLE`], for a local buffer passed by reference: `g1(&a, x)`.
pub const WHOLE_REF: usize = usize::MAX - 1;

/// A float expression.
#[derive(Clone, Debug, PartialEq)]
pub enum FExpr {
    Lit(f64),
    Var(String),
    /// `a[i]` of a slice parameter or a local array.
    Index(String, IExpr),
    /// `i as f64`.
    Cast(IExpr),
    Neg(Box<FExpr>),
    Bin(BinOp, Box<FExpr>, Box<FExpr>),
    Call1(Fn1, Box<FExpr>),
    Powi(Box<FExpr>, i32),
    Call2(Fn2, Box<FExpr>, Box<FExpr>),
    Call3(Fn3, Box<FExpr>, Box<FExpr>, Box<FExpr>),
    /// A call of another generated function.
    Call(String, Vec<FExpr>),
    /// `if c { .. } else if .. { .. } else { .. }` as an expression; every block has a tail.
    If(Vec<(Cond, Block)>, Box<Block>),
}

/// A branch condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Cmp(CmpOp, FExpr, FExpr),
    /// A comparison of integers (a counter against its bound).
    ICmp(CmpOp, IExpr, IExpr),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// Where an assignment writes.
#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    Var(String),
    Elem(String, IExpr),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `let [mut] name[: f64] = init;`
    Let {
        name: String,
        mutable: bool,
        annotate: bool,
        init: FExpr,
    },
    /// `let mut name = init;` of a `usize` counter.
    LetIdx {
        name: String,
        init: IExpr,
    },
    /// `let name[: usize] = init;` of an integer that does not change (a shape such as
    /// `let cols = s.len() / 2;`, or an index set first in a loop body: `let l = r * cols + j;`).
    LetInt {
        name: String,
        init: IExpr,
        annotate: bool,
    },
    /// `name += 1;` of a counter.
    IncIdx {
        name: String,
    },
    /// `name = value;` of a `usize` variable (an argmax: `best = i;`).
    SetIdx {
        name: String,
        value: IExpr,
    },
    /// `break;` out of the innermost loop.
    Break,
    /// `let mut name: [f64; len] = [0.0; len];`, or `let mut name = [0.0f64; len];` (a bare
    /// `[0.0; len]` has elements of type `{float}`, without methods, until it is assigned).
    /// With `vec`, a `Vec` of that many zeros, `vec![0.0; n]` with `n` printed as `vec` (a
    /// literal or a `.len()`, whose value is `len`).
    LetBuf {
        name: String,
        len: usize,
        annotate: bool,
        /// No annotation and no suffix: `[0.0; 4]`, `vec![0.0; n]`. Only where the first use
        /// of the buffer assigns an `f64` to it (which fixes the element type).
        bare: bool,
        vec: Option<IExpr>,
    },
    Assign {
        place: Place,
        op: AssignOp,
        value: FExpr,
    },
    /// `if .. {} else if .. {} else {}` as a statement; blocks have no tail.
    If {
        arms: Vec<(Cond, Block)>,
        els: Option<Block>,
    },
    Return(FExpr),
    /// `for var in start..end { .. }`, or `(start..end).rev()`.
    For {
        var: String,
        start: IExpr,
        end: IExpr,
        rev: bool,
        body: Block,
    },
    While {
        cond: Cond,
        body: Block,
    },
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub tail: Option<FExpr>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// A float scalar.
    Scalar(String),
    /// A float slice `&[f64]`; the harness passes slices of length `len`.
    Slice(String, usize),
}

impl Param {
    pub fn name(&self) -> &str {
        match self {
            Param::Scalar(n) | Param::Slice(n, _) => n,
        }
    }
}

/// One generated function.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    /// Printed `pub fn` when true: `#[gradient]` must give `_grad` the same visibility.
    pub public: bool,
    pub params: Vec<Param>,
    /// `Some(names)` prints `#[gradient(wrt(names))]`.
    pub wrt: Option<Vec<String>>,
    pub body: Block,
}

impl Function {
    /// Whether parameter `p` is active (differentiated).
    pub fn is_active(&self, p: &Param) -> bool {
        match &self.wrt {
            None => true,
            Some(names) => names.iter().any(|n| n == p.name()),
        }
    }
}

/// One program: helper functions (each callable by the later ones) and the entry `f`, last.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub functions: Vec<Function>,
}

impl Program {
    /// The entry point, `f`: the function whose gradient is checked.
    pub fn entry(&self) -> &Function {
        self.functions
            .last()
            .expect("a program has an entry function")
    }

    /// The number of inputs of the oracle: every scalar, then every slice element.
    pub fn n_inputs(&self) -> usize {
        self.entry()
            .params
            .iter()
            .map(|p| match p {
                Param::Scalar(_) => 1,
                Param::Slice(_, len) => *len,
            })
            .sum()
    }
}

// Operator precedences, loosest first (the Rust reference's table).
const PREC_OR: u8 = 1;
const PREC_AND: u8 = 2;
const PREC_CMP: u8 = 3;
const PREC_ADD: u8 = 4;
const PREC_MUL: u8 = 5;
const PREC_AS: u8 = 6;
const PREC_UNARY: u8 = 7;
const PREC_POSTFIX: u8 = 8;
const PREC_ATOM: u8 = 9;

/// Prints a float literal so that it reads back as the same `f64` and as a float.
pub fn float_lit(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// Prints programs in one [`Mode`].
pub struct Printer {
    mode: Mode,
    out: String,
    indent: usize,
}

impl Printer {
    pub fn new(mode: Mode) -> Self {
        Printer {
            mode,
            out: String::new(),
            indent: 0,
        }
    }

    /// An empty line between items.
    pub fn blank(&mut self) {
        self.out.push('\n');
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn float_ty(&self) -> &'static str {
        match self.mode {
            Mode::Plain => "f64",
            Mode::Dual => "Dual<N>",
        }
    }

    fn line(&mut self, s: &str) {
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// Prints `f` as an item, with its `#[gradient]` attribute when `attr`; `public` forces
    /// `pub` (the oracle's functions are called from outside their module).
    pub fn function(&mut self, f: &Function, attr: bool, public: bool) {
        if attr {
            let a = match &f.wrt {
                None => "#[gradient]".to_string(),
                Some(names) => format!("#[gradient(wrt({}))]", names.join(", ")),
            };
            self.line(&a);
        }
        let vis = if public || f.public { "pub " } else { "" };
        let params: Vec<String> = f
            .params
            .iter()
            .map(|p| match p {
                Param::Scalar(n) => format!("{n}: {}", self.float_ty()),
                Param::Slice(n, _) => format!("{n}: &[{}]", self.float_ty()),
            })
            .collect();
        let generics = match self.mode {
            Mode::Plain => "",
            Mode::Dual => "<const N: usize>",
        };
        let head = format!(
            "{vis}fn {}{generics}({}) -> {} {{",
            f.name,
            params.join(", "),
            self.float_ty()
        );
        self.line(&head);
        self.indent += 1;
        self.block_body(&f.body);
        self.indent -= 1;
        self.line("}");
    }

    fn block_body(&mut self, b: &Block) {
        for s in &b.stmts {
            self.stmt(s);
        }
        if let Some(t) = &b.tail {
            let e = self.expr(t, 0);
            self.line(&e);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Let {
                name,
                mutable,
                annotate,
                init,
            } => {
                let m = if *mutable { "mut " } else { "" };
                let ty = if *annotate {
                    format!(": {}", self.float_ty())
                } else {
                    String::new()
                };
                let e = self.expr(init, 0);
                self.line(&format!("let {m}{name}{ty} = {e};"));
            }
            Stmt::LetIdx { name, init } => {
                let e = iexpr(init, 0);
                self.line(&format!("let mut {name}: usize = {e};"));
            }
            Stmt::LetInt {
                name,
                init,
                annotate,
            } => {
                let ty = if *annotate { ": usize" } else { "" };
                let e = iexpr(init, 0);
                self.line(&format!("let {name}{ty} = {e};"));
            }
            Stmt::IncIdx { name } => self.line(&format!("{name} += 1;")),
            Stmt::SetIdx { name, value } => {
                let e = iexpr(value, 0);
                self.line(&format!("{name} = {e};"));
            }
            Stmt::Break => self.line("break;"),
            Stmt::LetBuf {
                name,
                len,
                annotate,
                bare,
                vec,
            } => {
                let (ty, zero) = match (self.mode, vec) {
                    (Mode::Plain, _) if *bare => (String::new(), "0.0".to_string()),
                    (Mode::Plain, None) if *annotate => {
                        (format!(": [f64; {len}]"), "0.0".to_string())
                    }
                    (Mode::Plain, Some(_)) if *annotate => (": Vec<f64>".into(), "0.0".into()),
                    (Mode::Plain, _) => (String::new(), "0.0f64".to_string()),
                    (Mode::Dual, None) => (format!(": [Dual<N>; {len}]"), self.lit(0.0)),
                    (Mode::Dual, Some(_)) => (": Vec<Dual<N>>".to_string(), self.lit(0.0)),
                };
                match vec {
                    None => self.line(&format!("let mut {name}{ty} = [{zero}; {len}];")),
                    Some(n) => {
                        let n = iexpr(n, 0);
                        self.line(&format!("let mut {name}{ty} = vec![{zero}; {n}];"));
                    }
                }
            }
            Stmt::Assign { place, op, value } => {
                let p = match place {
                    Place::Var(n) => n.clone(),
                    Place::Elem(a, i) => format!("{a}[{}]", iexpr(i, 0)),
                };
                if let (Mode::Dual, Place::Elem(..), AssignOp::Compound(b)) = (self.mode, place, op)
                {
                    // `h[r] -= h[j] * e` on a `Vec<Dual<N>>` borrows `h` mutably (through
                    // `IndexMut`) while `h[j]` reads it: the oracle writes out the operation
                    // (the same value, the right side having no effects).
                    let e = self.expr(value, b.prec() + 1);
                    self.line(&format!("{p} = {p} {} {e};", b.text()));
                    return;
                }
                let o = match op {
                    AssignOp::Set => "=".to_string(),
                    AssignOp::Compound(b) => format!("{}=", b.text()),
                };
                let e = self.expr(value, 0);
                self.line(&format!("{p} {o} {e};"));
            }
            Stmt::If { arms, els } => {
                for (k, (c, b)) in arms.iter().enumerate() {
                    let c = self.cond(c, 0);
                    if k == 0 {
                        self.line(&format!("if {c} {{"));
                    } else {
                        self.line(&format!("}} else if {c} {{"));
                    }
                    self.indent += 1;
                    self.block_body(b);
                    self.indent -= 1;
                }
                if let Some(b) = els {
                    self.line("} else {");
                    self.indent += 1;
                    self.block_body(b);
                    self.indent -= 1;
                }
                self.line("}");
            }
            Stmt::Return(e) => {
                let e = self.expr(e, 0);
                self.line(&format!("return {e};"));
            }
            Stmt::For {
                var,
                start,
                end,
                rev,
                body,
            } => {
                // `(j + 1)..n`, but `0..s.len() - 2` (a range binds more loosely than `-`).
                let range = format!("{}..{}", iexpr(start, PREC_ADD + 1), iexpr(end, PREC_ADD));
                let range = if *rev {
                    format!("({range}).rev()")
                } else {
                    range
                };
                self.line(&format!("for {var} in {range} {{"));
                self.indent += 1;
                self.block_body(body);
                self.indent -= 1;
                self.line("}");
            }
            Stmt::While { cond, body } => {
                let c = self.cond(cond, 0);
                self.line(&format!("while {c} {{"));
                self.indent += 1;
                self.block_body(body);
                self.indent -= 1;
                self.line("}");
            }
        }
    }

    fn lit(&self, v: f64) -> String {
        match self.mode {
            Mode::Plain => float_lit(v),
            Mode::Dual => format!("c::<N>({})", float_lit(v)),
        }
    }

    fn lit_prec(&self, v: f64) -> u8 {
        match self.mode {
            Mode::Plain if v.is_sign_negative() => PREC_UNARY,
            _ => PREC_ATOM,
        }
    }

    /// Prints `e`, in parentheses unless it binds at least as tightly as `min_prec`.
    pub fn expr(&mut self, e: &FExpr, min_prec: u8) -> String {
        let (s, p) = self.expr_prec(e);
        if p < min_prec {
            format!("({s})")
        } else {
            s
        }
    }

    fn expr_prec(&mut self, e: &FExpr) -> (String, u8) {
        match e {
            FExpr::Lit(v) => (self.lit(*v), self.lit_prec(*v)),
            FExpr::Var(n) => (n.clone(), PREC_ATOM),
            // A whole slice or buffer passed to a call (see [`WHOLE`]).
            FExpr::Index(a, IExpr::Lit(WHOLE)) => (a.clone(), PREC_ATOM),
            FExpr::Index(a, IExpr::Lit(WHOLE_REF)) => (format!("&{a}"), PREC_ATOM),
            FExpr::Index(a, i) => (format!("{a}[{}]", iexpr(i, 0)), PREC_POSTFIX),
            FExpr::Cast(i) => {
                let s = format!("{} as f64", iexpr(i, PREC_AS));
                match self.mode {
                    // Parenthesised wherever it is an operand: `i as f64 < x` would parse as
                    // generic arguments of `f64`.
                    Mode::Plain => (s, PREC_OR),
                    Mode::Dual => (format!("c::<N>({s})"), PREC_ATOM),
                }
            }
            FExpr::Neg(x) => (format!("-{}", self.expr(x, PREC_POSTFIX)), PREC_UNARY),
            FExpr::Bin(op, a, b) => {
                let p = op.prec();
                let a = self.expr(a, p);
                let b = self.expr(b, p + 1);
                (format!("{a} {} {b}", op.text()), p)
            }
            FExpr::Call1(f, x) => {
                let x = self.expr(x, PREC_POSTFIX);
                (format!("{x}.{}()", f.name()), PREC_POSTFIX)
            }
            FExpr::Powi(x, n) => {
                let x = self.expr(x, PREC_POSTFIX);
                (format!("{x}.powi({n})"), PREC_POSTFIX)
            }
            FExpr::Call2(f, x, y) => {
                let x = self.expr(x, PREC_POSTFIX);
                let y = self.expr(y, 0);
                (format!("{x}.{}({y})", f.name()), PREC_POSTFIX)
            }
            FExpr::Call3(f, x, a, b) => {
                let x = self.expr(x, PREC_POSTFIX);
                let a = self.expr(a, 0);
                let b = self.expr(b, 0);
                (format!("{x}.{}({a}, {b})", f.name()), PREC_POSTFIX)
            }
            FExpr::Call(name, args) => {
                let args: Vec<String> = args.iter().map(|a| self.expr(a, 0)).collect();
                (format!("{name}({})", args.join(", ")), PREC_ATOM)
            }
            FExpr::If(arms, els) => {
                // Printed on one line; rustfmt is not needed for a test input.
                let mut s = String::new();
                for (k, (c, b)) in arms.iter().enumerate() {
                    let c = self.cond(c, 0);
                    let b = self.inline_block(b);
                    if k > 0 {
                        s.push_str(" else ");
                    }
                    let _ = write!(s, "if {c} {b}");
                }
                let b = self.inline_block(els);
                let _ = write!(s, " else {b}");
                (s, 0)
            }
        }
    }

    /// A block printed on one line: `{ let a = ..; a * 2.0 }`.
    fn inline_block(&mut self, b: &Block) -> String {
        let mut sub = Printer::new(self.mode);
        for s in &b.stmts {
            sub.stmt(s);
        }
        let mut parts: Vec<String> = sub.out.lines().map(|l| l.trim().to_string()).collect();
        if let Some(t) = &b.tail {
            parts.push(self.expr(t, 0));
        }
        format!("{{ {} }}", parts.join(" "))
    }

    fn cond(&mut self, c: &Cond, min_prec: u8) -> String {
        let (s, p) = match c {
            Cond::Cmp(op, a, b) => {
                let a = self.expr(a, PREC_CMP + 1);
                let b = self.expr(b, PREC_CMP + 1);
                (format!("{a} {} {b}", op.text()), PREC_CMP)
            }
            Cond::ICmp(op, a, b) => {
                let a = iexpr(a, PREC_CMP + 1);
                let b = iexpr(b, PREC_CMP + 1);
                (format!("{a} {} {b}", op.text()), PREC_CMP)
            }
            Cond::And(a, b) => {
                let a = self.cond(a, PREC_AND);
                let b = self.cond(b, PREC_AND + 1);
                (format!("{a} && {b}"), PREC_AND)
            }
            Cond::Or(a, b) => {
                let a = self.cond(a, PREC_OR);
                let b = self.cond(b, PREC_OR + 1);
                (format!("{a} || {b}"), PREC_OR)
            }
            Cond::Not(a) => (format!("!{}", self.cond(a, PREC_ATOM)), PREC_UNARY),
        };
        if p < min_prec {
            format!("({s})")
        } else {
            s
        }
    }
}

/// Prints an integer expression (identical in both modes).
pub fn iexpr(e: &IExpr, min_prec: u8) -> String {
    let (s, p) = match e {
        IExpr::Lit(v) => (v.to_string(), PREC_ATOM),
        IExpr::Var(n) => (n.clone(), PREC_ATOM),
        IExpr::Len(a) => (format!("{a}.len()"), PREC_POSTFIX),
        IExpr::Add(a, b) => (
            format!("{} + {}", iexpr(a, PREC_ADD), iexpr(b, PREC_ADD + 1)),
            PREC_ADD,
        ),
        IExpr::Sub(a, b) => (
            format!("{} - {}", iexpr(a, PREC_ADD), iexpr(b, PREC_ADD + 1)),
            PREC_ADD,
        ),
        IExpr::Mul(a, b) => (
            format!("{} * {}", iexpr(a, PREC_MUL), iexpr(b, PREC_MUL + 1)),
            PREC_MUL,
        ),
        IExpr::Div(a, b) => (
            format!("{} / {}", iexpr(a, PREC_MUL), iexpr(b, PREC_MUL + 1)),
            PREC_MUL,
        ),
        IExpr::Rem(a, b) => (
            format!("{} % {}", iexpr(a, PREC_MUL), iexpr(b, PREC_MUL + 1)),
            PREC_MUL,
        ),
    };
    if p < min_prec {
        format!("({s})")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: &str) -> Box<FExpr> {
        Box::new(FExpr::Var(n.into()))
    }

    #[test]
    fn prints_minimal_parentheses() {
        // (x - (y + 1.0)) * -z.sin()
        let e = FExpr::Bin(
            BinOp::Mul,
            Box::new(FExpr::Bin(
                BinOp::Sub,
                v("x"),
                Box::new(FExpr::Bin(BinOp::Add, v("y"), Box::new(FExpr::Lit(1.0)))),
            )),
            Box::new(FExpr::Neg(Box::new(FExpr::Call1(Fn1::Sin, v("z"))))),
        );
        let mut p = Printer::new(Mode::Plain);
        assert_eq!(p.expr(&e, 0), "(x - (y + 1.0)) * -z.sin()");
        let mut p = Printer::new(Mode::Dual);
        assert_eq!(p.expr(&e, 0), "(x - (y + c::<N>(1.0))) * -z.sin()");
        let neg = FExpr::Call1(Fn1::Abs, Box::new(FExpr::Neg(v("x"))));
        assert_eq!(Printer::new(Mode::Plain).expr(&neg, 0), "(-x).abs()");
        let lit = FExpr::Bin(BinOp::Sub, v("x"), Box::new(FExpr::Lit(-2.0)));
        assert_eq!(Printer::new(Mode::Plain).expr(&lit, 0), "x - -2.0");
    }

    #[test]
    fn prints_index_arithmetic_and_casts() {
        let i = IExpr::Rem(
            Box::new(IExpr::Add(
                Box::new(IExpr::Var("i".into())),
                Box::new(IExpr::Lit(1)),
            )),
            Box::new(IExpr::Len("s".into())),
        );
        assert_eq!(iexpr(&i, 0), "(i + 1) % s.len()");
        let e = FExpr::Bin(
            BinOp::Mul,
            Box::new(FExpr::Index("s".into(), i)),
            Box::new(FExpr::Cast(IExpr::Var("i".into()))),
        );
        assert_eq!(
            Printer::new(Mode::Plain).expr(&e, 0),
            "s[(i + 1) % s.len()] * (i as f64)"
        );
        assert_eq!(
            Printer::new(Mode::Dual).expr(&e, 0),
            "s[(i + 1) % s.len()] * c::<N>(i as f64)"
        );
    }
}
