//! The intermediate representation: a structured program over numbered variables.
//!
//! A function lowers to a [`Func`]: a table of variables and a [`Block`] of statements. Every
//! user statement that computes a float becomes one [`Stmt::Assign`] carrying its own Wengert
//! list (`temps`, children before parents, each temporary used exactly once); control flow stays
//! structured ([`Stmt::If`], [`Stmt::For`], [`Stmt::While`]) as in MLIR's `scf` dialect. Early
//! exits (`return`, `break`, `continue`) are already lowered to flags and guards, so every block
//! runs to its end. Local arrays and `Vec`s are memory: [`Place::Elem`] writes and
//! [`Rhs::Load`] reads of indexed elements.

use proc_macro2::{Span, TokenStream};

use crate::intrinsics::Op;

/// Index into [`Func::vars`].
pub type VarId = usize;

/// What a variable holds, as far as differentiation is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// A float of the function's float type (may be active).
    Float,
    /// An integer (indices, counters, loop bounds).
    Int,
    /// A boolean (branch decisions, exit flags).
    Bool,
    /// A float slice or array parameter (read-only memory).
    Slice,
    /// A local float array or `Vec` (writable memory).
    Buffer,
    /// Anything else: copied as written, never differentiated.
    Opaque,
}

/// Why a variable exists; decides how it is declared and whether its value can be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Parameter number `index` of the function.
    Param { index: usize },
    /// A variable the user declared with `let` (or one the lowering made for a block's value).
    Local,
    /// One node of a statement's Wengert list.
    Temp,
    /// The index of a `for` loop: set by the loop header in both sweeps.
    LoopIndex,
    /// Bookkeeping the lowering introduced: flags, loop bounds, trip counts, the return value.
    Hidden,
}

#[derive(Clone, Debug)]
pub struct Var {
    /// Base of the emitted name: the user's identifier, or a generated word.
    pub name: String,
    /// The user's identifier, for rebinding inside copied macro calls.
    pub user_ident: Option<syn::Ident>,
    pub sort: Sort,
    pub role: Role,
    /// For local array buffers: the length `N` of `[_; N]` (`None` for a `Vec`).
    pub array_len: Option<TokenStream>,
}

/// A value used by an operation.
#[derive(Clone, Debug)]
pub enum Operand {
    Var(VarId),
    /// A constant: a literal or a path to a constant, with no variable in it.
    Const(TokenStream),
}

impl Operand {
    pub fn var(&self) -> Option<VarId> {
        match self {
            Operand::Var(v) => Some(*v),
            Operand::Const(_) => None,
        }
    }
}

/// Inactive code copied into the output, with the variables it reads (already renamed).
#[derive(Clone, Debug)]
pub struct Code {
    pub tokens: TokenStream,
    pub reads: Vec<VarId>,
    /// Slices and buffers of `reads` that are read only through `.len()` / `.is_empty()`.
    pub shape_only: Vec<VarId>,
    /// The user's expression, for errors.
    pub span: Span,
}

/// An argument of a call to another `#[gradient]` function.
#[derive(Clone, Debug)]
pub enum CallArg {
    Float(Operand),
    Slice(VarId),
    Other(Code),
}

/// The right-hand side of one Wengert-list node.
#[derive(Clone, Debug)]
pub enum Rhs {
    /// An intrinsic or arithmetic operation; `int_arg` is `powi`'s exponent.
    Op {
        op: Op,
        args: Vec<Operand>,
        int_arg: Option<Code>,
    },
    /// `buf[index]` of a slice parameter or a local buffer.
    Load { buf: VarId, index: Code },
    /// A call to another `#[gradient]` function, differentiated through its `_grad`.
    Call { path: syn::Path, args: Vec<CallArg> },
    /// An inactive float expression (`n as f64`, a field of an inactive parameter, ...).
    Expr(Code),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub id: VarId,
    pub rhs: Rhs,
    pub span: Span,
}

/// Where an [`Stmt::Assign`] writes.
#[derive(Clone, Debug)]
pub enum Place {
    Var(VarId),
    Elem { buf: VarId, index: Code },
}

/// Unique number of a statement that writes a variable (an assignment site).
pub type SiteId = usize;

#[derive(Clone, Debug)]
pub enum Stmt {
    /// `place = value`, after computing `temps` (the statement's Wengert list).
    Assign {
        site: SiteId,
        place: Place,
        temps: Vec<Node>,
        value: Operand,
        span: Span,
    },
    /// A non-float variable set from inactive code (`let n = x.len();`, flags, bounds).
    Set {
        site: SiteId,
        dst: VarId,
        code: Code,
    },
    /// Declaration (or re-declaration, inside a loop) of a local buffer.
    BufDecl {
        site: SiteId,
        buf: VarId,
        init: Code,
    },
    If {
        flag: VarId,
        then_branch: Block,
        else_branch: Block,
    },
    For {
        /// A site number identifying the loop (used when the reverse sweep recomputes it).
        id: SiteId,
        index: VarId,
        range: LoopRange,
        body: Block,
        exit: Option<LoopExit>,
    },
    While {
        cond: Block,
        flag: VarId,
        body: Block,
        trips: VarId,
        site: SiteId,
        stop: Option<Code>,
    },
    /// Forward-only code with no float result (`println!`, `assert!`, `v.push(i)`).
    Plain(Code),
}

/// `start..end` followed by `.rev()` / `.step_by(k)` adapters, in the user's order.
#[derive(Clone, Debug)]
pub struct LoopRange {
    pub start: VarId,
    pub end: VarId,
    pub adapters: Vec<Adapter>,
}

#[derive(Clone, Debug)]
pub enum Adapter {
    Rev,
    StepBy(VarId),
}

/// A loop that can be left early records how many iterations ran.
#[derive(Clone, Debug)]
pub struct LoopExit {
    /// True when the loop must stop after this iteration (a `break` or `return` ran).
    pub stop: Code,
    pub trips: VarId,
    pub site: SiteId,
}

#[derive(Clone, Debug, Default)]
pub struct Block {
    pub stmts: Vec<Stmt>,
}

/// A parameter of the function as the generated signature needs it.
#[derive(Clone, Debug)]
pub struct Param {
    pub var: VarId,
    pub ty: syn::Type,
    pub mutable: bool,
    pub active: bool,
    /// For slices: the shadow's type (`&mut [T]` or `&mut [T; N]`).
    pub shadow_ty: Option<syn::Type>,
}

#[derive(Clone, Debug)]
pub struct Func {
    pub vars: Vec<Var>,
    pub params: Vec<Param>,
    pub body: Block,
    /// The variable holding the return value.
    pub ret: VarId,
    /// `f32` or `f64`.
    pub float: syn::Ident,
    /// Items declared inside the body (`const`, `use`), emitted first.
    pub items: Vec<TokenStream>,
    pub n_sites: usize,
}

impl Block {
    /// Visits every statement, depth first, parents before children.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Stmt)) {
        for s in &self.stmts {
            s.walk(f);
        }
    }
}

impl Stmt {
    /// Visits this statement and every statement nested in it, parents before children.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Stmt)) {
        f(self);
        match self {
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                then_branch.walk(f);
                else_branch.walk(f);
            }
            Stmt::For { body, .. } => body.walk(f),
            Stmt::While { cond, body, .. } => {
                cond.walk(f);
                body.walk(f);
            }
            _ => {}
        }
    }
}
