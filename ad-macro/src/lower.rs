//! Lowering: `syn::ItemFn` → [`Func`].
//!
//! Variables are renamed to numbered [`Var`]s (so shadowing and block scopes disappear), every
//! float expression becomes a Wengert list attached to the statement that consumes it, and early
//! exits become flags: after a statement that may `return`, `break` or `continue`, the rest of
//! the block is wrapped in `if !(flags) { ... }`, so that every block of the IR runs to its end.
//! Code with no float result (conditions, indices, `println!`) is kept as written, with its
//! variables renamed, as [`Code`].

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{BinOp, Expr, Lit, Pat, Stmt as SynStmt, Type, UnOp};

use crate::attr::Attr;
use crate::errors::Errors;
use crate::intrinsics::{is_float_const, is_inactive_float_method, Op};
use crate::ir::*;

/// Lowers `item` to IR. Errors are collected in `cx`; the IR is only meaningful if none were.
pub fn lower(item: &syn::ItemFn, attr: &Attr, cx: &mut Errors) -> Option<Func> {
    let sig = &item.sig;
    let float = match return_float(&sig.output) {
        Some(f) => f,
        None => {
            let span = match &sig.output {
                syn::ReturnType::Default => sig.ident.span(),
                syn::ReturnType::Type(_, ty) => ty.span(),
            };
            cx.error(
                span,
                "#[gradient] functions must return `f64` or `f32`: the gradient is that of a \
                 scalar value",
            );
            return None;
        }
    };
    check_signature(sig, cx);
    let mut l = Lowerer {
        cx,
        vars: Vec::new(),
        scopes: vec![HashMap::new()],
        float,
        n_sites: 0,
        loops: Vec::new(),
        returned: None,
        items: Vec::new(),
    };
    let ret = l.new_var("ret", Sort::Float, Role::Hidden);
    let params = l.lower_params(sig, attr);
    let mut body = Vec::new();
    l.lower_stmts(&item.block.stmts, &mut body, Sink::Var(ret));
    if let Some(flag) = l.returned {
        let site = l.site();
        let code = Code {
            tokens: quote!(false),
            reads: vec![],
            span: Span::call_site(),
            shape_only: vec![],
        };
        body.insert(
            0,
            Stmt::Set {
                site,
                dst: flag,
                code,
            },
        );
    }
    let float = l.float.clone();
    Some(Func {
        vars: l.vars,
        params,
        body: Block { stmts: body },
        ret,
        float,
        items: l.items,
        n_sites: l.n_sites,
    })
}

fn return_float(output: &syn::ReturnType) -> Option<syn::Ident> {
    match output {
        syn::ReturnType::Type(_, ty) => float_type(ty),
        syn::ReturnType::Default => None,
    }
}

/// `f32` or `f64` (also as `std::primitive::f64` or `core::primitive::f64`).
fn float_type(ty: &Type) -> Option<syn::Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            let ok_prefix = p.path.segments.len() == 1
                || p.path
                    .segments
                    .iter()
                    .rev()
                    .skip(1)
                    .all(|s| s.ident == "std" || s.ident == "core" || s.ident == "primitive");
            if ok_prefix
                && (last.ident == "f64" || last.ident == "f32")
                && last.arguments.is_empty()
            {
                Some(last.ident.clone())
            } else {
                None
            }
        }
        Type::Paren(p) => float_type(&p.elem),
        Type::Group(g) => float_type(&g.elem),
        _ => None,
    }
}

/// The element type of a shadow `&mut [T]` or `&mut [T; N]`.
fn slice_elem(ty: &Type) -> Option<syn::Ident> {
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Slice(s) => float_type(&s.elem),
            Type::Array(a) => float_type(&a.elem),
            _ => None,
        },
        _ => None,
    }
}

fn is_int_type(ty: &Type) -> bool {
    if let Type::Path(p) = ty {
        if let Some(id) = p.path.get_ident() {
            return matches!(
                id.to_string().as_str(),
                "i8" | "i16"
                    | "i32"
                    | "i64"
                    | "i128"
                    | "isize"
                    | "u8"
                    | "u16"
                    | "u32"
                    | "u64"
                    | "u128"
                    | "usize"
            );
        }
    }
    false
}

fn check_signature(sig: &syn::Signature, cx: &mut Errors) {
    if let Some(c) = &sig.constness {
        cx.error(c.span, "#[gradient] does not support `const fn`");
    }
    if let Some(a) = &sig.asyncness {
        cx.error(a.span, "#[gradient] does not support `async fn`");
    }
    if let Some(u) = &sig.unsafety {
        cx.error(
            u.span,
            "#[gradient] does not support `unsafe fn`: write a safe function",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error(
            abi.extern_token.span,
            "#[gradient] does not support `extern` functions",
        );
    }
    if !sig.generics.params.is_empty() {
        cx.error(
            sig.generics.span(),
            "#[gradient] does not support generic functions: write the function for `f64` or `f32`",
        );
    }
    if let Some(v) = &sig.variadic {
        cx.error(v.span(), "#[gradient] does not support variadic functions");
    }
}

/// Where the value of a block's tail expression goes.
#[derive(Clone, Copy)]
enum Sink {
    /// Discarded (statement position).
    None,
    Var(VarId),
}

/// Which exits a statement may take.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Exits {
    ret: bool,
    brk: bool,
    cont: bool,
}

impl Exits {
    fn any(self) -> bool {
        self.ret || self.brk || self.cont
    }
    fn union(self, o: Exits) -> Exits {
        Exits {
            ret: self.ret || o.ret,
            brk: self.brk || o.brk,
            cont: self.cont || o.cont,
        }
    }
}

struct LoopCtx {
    brk: Option<VarId>,
    cont: Option<VarId>,
}

struct Lowerer<'a> {
    cx: &'a mut Errors,
    vars: Vec<Var>,
    scopes: Vec<HashMap<String, VarId>>,
    float: syn::Ident,
    n_sites: usize,
    loops: Vec<LoopCtx>,
    returned: Option<VarId>,
    items: Vec<TokenStream>,
}

impl Lowerer<'_> {
    fn new_var(&mut self, name: &str, sort: Sort, role: Role) -> VarId {
        let name = name.trim_start_matches("r#");
        self.vars.push(Var {
            name: name.to_string(),
            user_ident: None,
            sort,
            role,
            array_len: None,
        });
        self.vars.len() - 1
    }

    fn declare(&mut self, ident: &syn::Ident, sort: Sort, role: Role) -> VarId {
        let name = ident.to_string();
        let id = self.new_var(&name, sort, role);
        self.vars[id].user_ident = Some(ident.clone());
        self.scopes.last_mut().expect("scope").insert(name, id);
        id
    }

    fn lookup(&self, name: &str) -> Option<VarId> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn site(&mut self) -> usize {
        self.n_sites += 1;
        self.n_sites - 1
    }

    fn temp(&mut self, rhs: Rhs, span: Span, temps: &mut Vec<Node>) -> Operand {
        let id = self.new_var("_t", Sort::Float, Role::Temp);
        temps.push(Node { id, rhs, span });
        Operand::Var(id)
    }

    fn hidden_bool(&mut self, name: &str) -> VarId {
        self.new_var(name, Sort::Bool, Role::Hidden)
    }

    fn set(&mut self, dst: VarId, code: Code, out: &mut Vec<Stmt>) {
        let site = self.site();
        out.push(Stmt::Set { site, dst, code });
    }

    // ----- parameters -----

    fn lower_params(&mut self, sig: &syn::Signature, attr: &Attr) -> Vec<Param> {
        let mut params = Vec::new();
        let mut names = Vec::new();
        for (index, input) in sig.inputs.iter().enumerate() {
            let pt = match input {
                syn::FnArg::Receiver(r) => {
                    self.cx.spanned(
                        r,
                        "#[gradient] does not support methods: write a free function that takes \
                         the fields it needs",
                    );
                    continue;
                }
                syn::FnArg::Typed(pt) => pt,
            };
            let (ident, mutable) = match &*pt.pat {
                Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                    (pi.ident.clone(), pi.mutability.is_some())
                }
                other => {
                    self.cx.spanned(
                        other,
                        "#[gradient] parameters must be plain names (`x: f64`), not patterns",
                    );
                    self.unsupported_names(other);
                    continue;
                }
            };
            let (sort, shadow_ty) = self.param_sort(&pt.ty);
            let var = self.declare(&ident, sort, Role::Param { index });
            names.push((ident, var));
            params.push(Param {
                var,
                ty: (*pt.ty).clone(),
                mutable,
                active: false,
                shadow_ty,
            });
        }
        let can_be_active =
            |l: &Self, v: VarId| matches!(l.vars[v].sort, Sort::Float | Sort::Slice);
        match &attr.wrt {
            Some(wrt) => {
                for (k, name) in wrt.iter().enumerate() {
                    if wrt[..k].contains(name) {
                        self.cx
                            .spanned(name, format!("`{name}` is named twice in `wrt(...)`"));
                    }
                    match names.iter().find(|(i, _)| i == name) {
                        None => self.cx.spanned(
                            name,
                            format!(
                                "`wrt` names `{name}`, which is not a parameter of this function"
                            ),
                        ),
                        Some((_, v)) if !can_be_active(self, *v) => self.cx.spanned(
                            name,
                            format!(
                                "`{name}` cannot be active: only `f32`/`f64` parameters and float \
                                 slices or arrays passed by reference can be differentiated"
                            ),
                        ),
                        Some((_, v)) => {
                            if let Some(p) = params.iter_mut().find(|p| p.var == *v) {
                                p.active = true;
                            }
                        }
                    }
                }
            }
            None => {
                for p in &mut params {
                    p.active = can_be_active(self, p.var);
                }
            }
        }
        if attr.wrt.is_none() && !params.iter().any(|p| p.active) && !self.cx.has_errors() {
            self.cx.spanned(&sig.ident,
                format!(
                    "`{}` has no parameter to differentiate: #[gradient] needs at least one `f32`/`f64` \
                     parameter or float slice (`&[f64]`)",
                    sig.ident
                ),
            );
        }
        // A float of the other type can only be inactive: copied code handles it.
        for p in &params {
            if !p.active && float_type(&p.ty).is_some_and(|t| t != self.float) {
                self.vars[p.var].sort = Sort::Opaque;
            }
        }
        // Active scalars must share the return type.
        for p in &params {
            if p.active && self.vars[p.var].sort == Sort::Float {
                if let Some(t) = float_type(&p.ty) {
                    if t != self.float {
                        self.cx.spanned(&p.ty,
                            format!(
                                "active parameters must have the return type `{}`; this one is `{t}` \
                                 (make it `{}` or leave it out of `wrt(...)`)",
                                self.float, self.float
                            ),
                        );
                    }
                }
            }
            if p.active && self.vars[p.var].sort == Sort::Slice {
                if let Some(t) = p.shadow_ty.as_ref().and_then(slice_elem) {
                    if t != self.float {
                        self.cx.spanned(&p.ty,
                            format!(
                                "active slices must hold the return type `{}`; this one holds `{t}`",
                                self.float
                            ),
                        );
                    }
                }
            }
        }
        params
    }

    /// The sort of a parameter type, and the shadow type of a float slice.
    fn param_sort(&mut self, ty: &Type) -> (Sort, Option<Type>) {
        if float_type(ty).is_some() {
            return (Sort::Float, None);
        }
        if is_int_type(ty) {
            return (Sort::Int, None);
        }
        if let Type::Path(p) = ty {
            if p.path.is_ident("bool") {
                return (Sort::Bool, None);
            }
        }
        if let Type::Reference(r) = ty {
            if r.mutability.is_none() {
                match &*r.elem {
                    Type::Slice(s) if float_type(&s.elem).is_some() => {
                        let e = &s.elem;
                        return (Sort::Slice, Some(syn::parse_quote!(&mut [#e])));
                    }
                    Type::Array(a) if float_type(&a.elem).is_some() => {
                        let (e, n) = (&a.elem, &a.len);
                        return (Sort::Slice, Some(syn::parse_quote!(&mut [#e; #n])));
                    }
                    Type::Path(p) => {
                        if let Some(last) = p.path.segments.last() {
                            if last.ident == "Vec" {
                                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                                    if let Some(syn::GenericArgument::Type(e)) = args.args.first() {
                                        if float_type(e).is_some() {
                                            return (
                                                Sort::Slice,
                                                Some(syn::parse_quote!(&mut [#e])),
                                            );
                                        }
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        (Sort::Opaque, None)
    }

    // ----- statements -----

    /// Lowers a statement list in the current scope; the tail expression goes to `sink`.
    fn lower_stmts(&mut self, stmts: &[SynStmt], out: &mut Vec<Stmt>, sink: Sink) -> Exits {
        let mut exits = Exits::default();
        for (i, stmt) in stmts.iter().enumerate() {
            let is_tail = i + 1 == stmts.len();
            let e = match stmt {
                SynStmt::Expr(expr, None) if is_tail => self.lower_tail(expr, out, sink),
                _ => self.lower_stmt(stmt, out),
            };
            exits = exits.union(e);
            if e.any() && !is_tail {
                // Guard the rest of the block: it runs only if no exit was taken.
                let flag = self.hidden_bool("go");
                let stop = self.stop_code(e);
                let tokens = &stop.tokens;
                self.set(
                    flag,
                    Code {
                        tokens: quote!(!(#tokens)),
                        reads: stop.reads,
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                    out,
                );
                let mut rest = Vec::new();
                let e2 = self.lower_stmts(&stmts[i + 1..], &mut rest, sink);
                out.push(Stmt::If {
                    flag,
                    then_branch: Block { stmts: rest },
                    else_branch: Block::default(),
                });
                return exits.union(e2);
            }
        }
        exits
    }

    /// The condition "an exit of kind `e` was taken", over the current flags.
    fn stop_code(&mut self, e: Exits) -> Code {
        let mut reads = Vec::new();
        if e.ret {
            reads.extend(self.returned);
        }
        if let Some(l) = self.loops.last() {
            if e.brk {
                reads.extend(l.brk);
            }
            if e.cont {
                reads.extend(l.cont);
            }
        }
        let idents: Vec<_> = reads
            .iter()
            .map(|&v| crate::emit::var_ident(&self.vars[v], v))
            .collect();
        let tokens = if idents.is_empty() {
            quote!(false)
        } else {
            quote!(#(#idents)||*)
        };
        Code {
            tokens,
            reads,
            shape_only: vec![],
            span: Span::call_site(),
        }
    }

    fn lower_tail(&mut self, expr: &Expr, out: &mut Vec<Stmt>, sink: Sink) -> Exits {
        match (sink, expr) {
            (Sink::Var(v), e)
                if self.vars[v].sort == Sort::Float && self.sort_of(e) == Sort::Float =>
            {
                self.assign_float(Place::Var(v), e, out);
                Exits::default()
            }
            (Sink::Var(v), e) if self.vars[v].sort == Sort::Float && !is_unit_like(e) => {
                // Not recognisably a float: kept as inactive code (a field of an inactive
                // parameter, a constant); the activity check refuses it if it hides an active
                // value.
                if !self.refuse_float_match(e) {
                    self.assign_float(Place::Var(v), e, out);
                }
                Exits::default()
            }
            (Sink::Var(v), e)
                if !is_unit_like(e) || is_region(e) && self.sort_of(e) != Sort::Opaque =>
            {
                if is_region(e) {
                    self.lower_region_value(e, v, out);
                } else {
                    let code = self.verbatim(e);
                    self.set(v, code, out);
                }
                Exits::default()
            }
            _ => self.lower_stmt_expr(expr, out),
        }
    }

    fn lower_stmt(&mut self, stmt: &SynStmt, out: &mut Vec<Stmt>) -> Exits {
        match stmt {
            SynStmt::Local(local) => {
                self.lower_local(local, out);
                Exits::default()
            }
            SynStmt::Item(item) => {
                match item {
                    syn::Item::Const(_) | syn::Item::Use(_) | syn::Item::Static(_) => {
                        self.items.push(item.to_token_stream())
                    }
                    other => self.cx.error(
                        item_span(other),
                        "#[gradient] does not support items inside the function body other than \
                         `const`, `static` and `use`: move it outside the function",
                    ),
                }
                Exits::default()
            }
            SynStmt::Macro(m) => {
                let expr = Expr::Macro(syn::ExprMacro {
                    attrs: m.attrs.clone(),
                    mac: m.mac.clone(),
                });
                let code = self.verbatim(&expr);
                let t = &code.tokens;
                out.push(Stmt::Plain(Code {
                    tokens: quote!(#t;),
                    reads: code.reads,
                    span: Span::call_site(),
                    shape_only: vec![],
                }));
                Exits::default()
            }
            SynStmt::Expr(e, _) => self.lower_stmt_expr(e, out),
        }
    }

    fn lower_local(&mut self, local: &syn::Local, out: &mut Vec<Stmt>) {
        let (ident, ty) = match &local.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                (pi.ident.clone(), None)
            }
            Pat::Type(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                    (pi.ident.clone(), Some((*pt.ty).clone()))
                }
                other => return self.unsupported_pattern(other),
            },
            Pat::Wild(_) => {
                if let Some(init) = &local.init {
                    let code = self.verbatim(&init.expr);
                    let t = &code.tokens;
                    out.push(Stmt::Plain(Code {
                        tokens: quote!(let _ = #t;),
                        reads: code.reads,
                        span: Span::call_site(),
                        shape_only: vec![],
                    }));
                }
                return;
            }
            other => return self.unsupported_pattern(other),
        };
        if let Some(init) = &local.init {
            if let Some((_, diverge)) = &init.diverge {
                self.cx
                    .spanned(diverge, "#[gradient] does not support `let ... else`");
                return;
            }
        }
        let init = local.init.as_ref().map(|i| &*i.expr);
        // Local buffers: `[c; n]`, `vec![c; n]`, `[a, b, c]`, `vec![a, b, c]`.
        if let Some(init) = init {
            if let Some(buf) = self.buffer_init(init) {
                let var = self.new_var(&ident.to_string(), Sort::Buffer, Role::Local);
                self.vars[var].user_ident = Some(ident.clone());
                self.vars[var].array_len = buf.array_len;
                let site = self.site();
                out.push(Stmt::BufDecl {
                    site,
                    buf: var,
                    init: buf.init,
                });
                for (k, e) in buf.elems.iter().enumerate() {
                    let index = Code {
                        tokens: quote!(#k),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    };
                    self.assign_float(Place::Elem { buf: var, index }, e, out);
                }
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .insert(ident.to_string(), var);
                return;
            }
        }
        let sort = match (&ty, init) {
            (Some(t), _) if float_type(t).is_some_and(|t| t != self.float) => Sort::Opaque,
            (Some(t), _) if float_type(t).is_some() => Sort::Float,
            (Some(t), _) if is_int_type(t) => Sort::Int,
            (Some(Type::Path(p)), _) if p.path.is_ident("bool") => Sort::Bool,
            (Some(_), _) => Sort::Opaque,
            (None, Some(e)) => self.sort_of(e),
            (None, None) => Sort::Opaque,
        };
        if let (Some(t), Some(e)) = (&ty, init) {
            if float_type(t).is_none() && self.sort_of(e) == Sort::Float {
                self.cx
                    .spanned(t, "a float expression is stored with a non-float type here");
            }
        }
        // `let b = x;`, `let c = &buf;`: another name for the same memory.
        match init.and_then(|e| self.memory_alias(e)) {
            Some(MemoryInit::Alias(target)) => {
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .insert(ident.to_string(), target);
                return;
            }
            Some(MemoryInit::Copy(src)) => {
                let buf = self.copy_array(&ident, src, out);
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .insert(ident.to_string(), buf);
                return;
            }
            None => {}
        }
        if let Some(e) = init {
            if let Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) = strip_parens(e) {
                self.cx.spanned(
                    e,
                    "a loop used as a value (`break value`) is not supported in #[gradient] \
                     functions: declare the variable before the loop, assign it, then `break`",
                );
                self.declare(&ident, Sort::Float, Role::Local);
                return;
            }
            if self.refuse_float_match(e) {
                self.declare(&ident, Sort::Float, Role::Local);
                return;
            }
        }
        match init {
            Some(e) if sort != Sort::Float && is_region(e) => {
                let var = self.new_var(&ident.to_string(), sort, Role::Local);
                self.vars[var].user_ident = Some(ident.clone());
                self.lower_region_value(e, var, out);
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .insert(ident.to_string(), var);
            }
            Some(e) if sort == Sort::Float => {
                // The initialiser is lowered before the name is in scope (`let x = x * 2.0`).
                let var = self.new_var(&ident.to_string(), Sort::Float, Role::Local);
                self.vars[var].user_ident = Some(ident.clone());
                self.assign_float(Place::Var(var), e, out);
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .insert(ident.to_string(), var);
            }
            Some(e) => {
                let errors = self.cx.count();
                let code = self.verbatim(e);
                if self.cx.count() > errors {
                    // Already refused: a float name, so that its uses give no further errors.
                    self.declare(&ident, Sort::Float, Role::Local);
                    return;
                }
                let var = self.declare(&ident, sort, Role::Local);
                self.set(var, code, out);
            }
            None => {
                self.declare(&ident, sort, Role::Local);
            }
        }
    }

    /// The slice or buffer that `e` names (`x`, `&x`, or a moved `Vec`), if `let y = e;` only
    /// gives it another name. Copying a local array is refused.
    fn memory_alias(&mut self, e: &Expr) -> Option<MemoryInit> {
        let (inner, by_ref) = match strip_parens(e) {
            Expr::Reference(r) if r.mutability.is_none() => (strip_parens(&r.expr), true),
            other => (other, false),
        };
        let Expr::Path(p) = inner else { return None };
        let v = self.lookup(&p.path.get_ident()?.to_string())?;
        match self.vars[v].sort {
            Sort::Slice => Some(MemoryInit::Alias(v)),
            Sort::Buffer if by_ref || self.vars[v].array_len.is_none() => {
                Some(MemoryInit::Alias(v))
            }
            Sort::Buffer => Some(MemoryInit::Copy(v)),
            _ => None,
        }
    }

    /// `let c = b;` for a local array `b`: a new buffer, filled by an element-wise copy loop so
    /// that the copy is differentiated like any other write.
    fn copy_array(&mut self, ident: &syn::Ident, src: VarId, out: &mut Vec<Stmt>) -> VarId {
        let f = self.float.clone();
        let span = ident.span();
        let len = self.vars[src].array_len.clone().expect("array");
        let buf = self.new_var(&ident.to_string(), Sort::Buffer, Role::Local);
        self.vars[buf].user_ident = Some(ident.clone());
        self.vars[buf].array_len = Some(len.clone());
        let code = |tokens: TokenStream, reads: Vec<VarId>| Code {
            tokens,
            reads,
            span,
            shape_only: vec![],
        };
        let site = self.site();
        let init = code(quote!([0.0 as ::core::primitive::#f; #len]), vec![]);
        out.push(Stmt::BufDecl { site, buf, init });
        let lo = self.new_var("lo", Sort::Int, Role::Hidden);
        self.set(lo, code(quote!(0usize), vec![]), out);
        let hi = self.new_var("hi", Sort::Int, Role::Hidden);
        self.set(hi, code(quote!(#len), vec![]), out);
        let index = self.new_var("_k", Sort::Int, Role::LoopIndex);
        let k = crate::emit::var_ident(&self.vars[index], index);
        let at = code(quote!(#k), vec![index]);
        let mut temps = Vec::new();
        let value = self.temp(
            Rhs::Load {
                buf: src,
                index: at.clone(),
            },
            span,
            &mut temps,
        );
        let site = self.site();
        let place = Place::Elem { buf, index: at };
        let copy = Stmt::Assign {
            site,
            place,
            temps,
            value,
            span,
        };
        let id = self.site();
        out.push(Stmt::For {
            id,
            index,
            range: LoopRange {
                start: lo,
                end: hi,
                adapters: vec![],
            },
            body: Block { stmts: vec![copy] },
            exit: None,
        });
        buf
    }

    /// Refuses a `match` that involves floats (it has no derivative here); true if refused.
    fn refuse_float_match(&mut self, e: &Expr) -> bool {
        let Expr::Match(m) = strip_parens(e) else {
            return false;
        };
        let mut words = Vec::new();
        collect_words(m.to_token_stream(), &mut words);
        let floaty = words.iter().any(|w| {
            self.lookup(w).is_some_and(|v| {
                matches!(self.vars[v].sort, Sort::Float | Sort::Slice | Sort::Buffer)
            })
        });
        if floaty {
            self.cx.spanned(
                m.match_token,
                "`match` is not supported in #[gradient] functions when it involves floats: write \
                 it with `if` / `else if` / `else`",
            );
        }
        floaty
    }

    /// `if` or a block used as a non-float value: lowered as a region whose tail sets `var`,
    /// so that float statements inside are differentiated.
    fn lower_region_value(&mut self, e: &Expr, var: VarId, out: &mut Vec<Stmt>) {
        let exits = match strip_parens(e) {
            Expr::If(i) => self.lower_if(i, out, Sink::Var(var)),
            Expr::Block(b) => self.scoped(|l| l.lower_stmts(&b.block.stmts, out, Sink::Var(var))),
            _ => Exits::default(),
        };
        if exits.any() {
            self.cx.spanned(
                e,
                "`return`, `break` and `continue` inside a block or `if` used as a value are not \
                 supported: use an `if` statement",
            );
        }
    }

    fn unsupported_pattern(&mut self, pat: &Pat) {
        self.cx.spanned(
            pat,
            "#[gradient] supports `let name = ...` and `let name: Type = ...` only: destructure in \
             separate `let`s",
        );
        self.unsupported_names(pat);
    }

    /// Declares the names of a refused pattern anyway, as floats, so that their uses give no
    /// further errors.
    fn unsupported_names(&mut self, pat: &Pat) {
        struct Names(Vec<syn::Ident>);
        impl<'ast> syn::visit::Visit<'ast> for Names {
            fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
                self.0.push(p.ident.clone());
            }
        }
        let mut names = Names(Vec::new());
        syn::visit::Visit::visit_pat(&mut names, pat);
        for ident in names.0 {
            self.declare(&ident, Sort::Float, Role::Local);
        }
    }

    fn lower_stmt_expr(&mut self, e: &Expr, out: &mut Vec<Stmt>) -> Exits {
        match e {
            Expr::Assign(a) => {
                self.lower_assign(&a.left, None, &a.right, e, out);
                Exits::default()
            }
            Expr::Binary(b) if plain_op(&b.op).is_some() => {
                self.lower_assign(&b.left, Some(&b.op), &b.right, e, out);
                Exits::default()
            }
            Expr::If(i) => self.lower_if(i, out, Sink::None),
            Expr::Match(_) if self.refuse_float_match(e) => Exits::default(),
            Expr::Block(b) if b.label.is_none() => {
                self.scoped(|l| l.lower_stmts(&b.block.stmts, out, Sink::None))
            }
            Expr::Paren(p) => self.lower_stmt_expr(&p.expr, out),
            Expr::ForLoop(f) => self.lower_for(f, out),
            Expr::While(w) => self.lower_while(Some(&w.cond), &w.body, w.label.as_ref(), out),
            Expr::Loop(l) => self.lower_while(None, &l.body, l.label.as_ref(), out),
            Expr::Return(r) => {
                let flag = match self.returned {
                    Some(f) => f,
                    None => {
                        let f = self.hidden_bool("returned");
                        self.returned = Some(f);
                        f
                    }
                };
                match &r.expr {
                    Some(v) => self.assign_float(Place::Var(0), v, out),
                    None => self.cx.spanned(r, "`return` needs a float value here"),
                }
                self.set(
                    flag,
                    Code {
                        tokens: quote!(true),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                    out,
                );
                Exits {
                    ret: true,
                    ..Exits::default()
                }
            }
            Expr::Break(b) => {
                if b.label.is_some() || b.expr.is_some() {
                    self.cx.spanned(b,
                        "#[gradient] supports plain `break` of the innermost loop only (no label, no \
                         value): set a flag, `break`, and test the flag after the inner loop",
                    );
                }
                match self.loops.last_mut() {
                    None => Exits::default(),
                    Some(l) => {
                        let flag = match l.brk {
                            Some(f) => f,
                            None => {
                                let f = self.hidden_bool("brk");
                                self.loops.last_mut().expect("loop").brk = Some(f);
                                f
                            }
                        };
                        self.set(
                            flag,
                            Code {
                                tokens: quote!(true),
                                reads: vec![],
                                span: Span::call_site(),
                                shape_only: vec![],
                            },
                            out,
                        );
                        Exits {
                            brk: true,
                            ..Exits::default()
                        }
                    }
                }
            }
            Expr::Continue(c) => {
                if c.label.is_some() {
                    self.cx.spanned(
                        c,
                        "#[gradient] supports `continue` of the innermost loop only",
                    );
                }
                match self.loops.last_mut() {
                    None => Exits::default(),
                    Some(l) => {
                        let flag = match l.cont {
                            Some(f) => f,
                            None => {
                                let f = self.hidden_bool("cont");
                                self.loops.last_mut().expect("loop").cont = Some(f);
                                f
                            }
                        };
                        self.set(
                            flag,
                            Code {
                                tokens: quote!(true),
                                reads: vec![],
                                span: Span::call_site(),
                                shape_only: vec![],
                            },
                            out,
                        );
                        Exits {
                            cont: true,
                            ..Exits::default()
                        }
                    }
                }
            }
            Expr::MethodCall(m)
                if self.sort_of(&m.receiver) == Sort::Opaque
                    || self.sort_of(&m.receiver) == Sort::Buffer =>
            {
                if self.sort_of(&m.receiver) == Sort::Buffer
                    || (matches!(m.method.to_string().as_str(), "push" | "insert" | "extend")
                        && m.args.iter().any(|a| self.sort_of(a) == Sort::Float))
                {
                    self.cx.spanned(
                        &m.method,
                        format!(
                            "`.{}()` on a float buffer is not supported: declare it with \
                             `vec![0.0; n]` or `[0.0; N]` and read and write elements by index",
                            m.method
                        ),
                    );
                }
                self.plain(e, out);
                Exits::default()
            }
            _ => {
                match self.sort_of(e) {
                    // A float expression whose value is dropped has no effect on the gradient;
                    // it is still checked for unsupported syntax.
                    Sort::Float => {
                        let mut sink = Vec::new();
                        let mut temps = Vec::new();
                        self.lower_float(e, &mut sink, &mut temps);
                    }
                    _ => self.plain(e, out),
                }
                Exits::default()
            }
        }
    }

    fn plain(&mut self, e: &Expr, out: &mut Vec<Stmt>) {
        let code = self.verbatim(e);
        let t = &code.tokens;
        out.push(Stmt::Plain(Code {
            tokens: quote!(#t;),
            reads: code.reads,
            span: Span::call_site(),
            shape_only: vec![],
        }));
    }

    fn scoped<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.scopes.push(HashMap::new());
        let r = f(self);
        self.scopes.pop();
        r
    }

    /// `left = right` or `left op= right`.
    fn lower_assign(
        &mut self,
        left: &Expr,
        binop: Option<&BinOp>,
        right: &Expr,
        whole: &Expr,
        out: &mut Vec<Stmt>,
    ) {
        let span = first_span(whole);
        if self.refuse_float_match(right) {
            return;
        }
        let left = strip_parens(left);
        let op = binop.and_then(compound_op);
        if binop.is_some() && op.is_none() && self.sort_of(right) == Sort::Float {
            self.cx.error(span, "this compound assignment is not supported on floats: use `+=`, `-=`, `*=`, `/=` or `%=`");
            return;
        }
        // The statement as written, for code kept as it is.
        let whole = &whole;
        match left {
            Expr::Path(p)
                if p.path
                    .get_ident()
                    .and_then(|i| self.lookup(&i.to_string()))
                    .is_some() =>
            {
                let var = self
                    .lookup(&p.path.get_ident().expect("ident").to_string())
                    .expect("var");
                let rhs_sort = self.sort_of(right);
                let sort = self.vars[var].sort;
                if sort == Sort::Float || rhs_sort == Sort::Float {
                    if matches!(sort, Sort::Opaque | Sort::Int) && rhs_sort == Sort::Float {
                        self.vars[var].sort = Sort::Float;
                    }
                    match op {
                        None => self.assign_float(Place::Var(var), right, out),
                        Some(op) => {
                            let mut temps = Vec::new();
                            let r = self.lower_float(right, out, &mut temps);
                            let value = self.temp(
                                Rhs::Op {
                                    op,
                                    args: vec![Operand::Var(var), r],
                                    int_arg: None,
                                },
                                span,
                                &mut temps,
                            );
                            let site = self.site();
                            out.push(Stmt::Assign {
                                site,
                                place: Place::Var(var),
                                temps,
                                value,
                                span,
                            });
                        }
                    }
                } else if matches!(sort, Sort::Slice | Sort::Buffer) {
                    self.cx.error(
                        span,
                        "assigning a whole slice or buffer is not supported: write its elements",
                    );
                } else {
                    let r = if is_region(right) {
                        let tmp = self.new_var("_val", sort, Role::Local);
                        self.lower_region_value(right, tmp, out);
                        let t = crate::emit::var_ident(&self.vars[tmp], tmp);
                        Code {
                            tokens: quote!(#t),
                            reads: vec![tmp],
                            span: first_span(right),
                            shape_only: vec![],
                        }
                    } else {
                        self.verbatim(right)
                    };
                    let rt = &r.tokens;
                    let mut reads = r.reads.clone();
                    let v = crate::emit::var_ident(&self.vars[var], var);
                    let tokens = match binop.and_then(plain_op) {
                        None => quote!(#rt),
                        Some(bop) => {
                            reads.push(var);
                            quote!(#v #bop (#rt))
                        }
                    };
                    self.set(
                        var,
                        Code {
                            tokens,
                            reads,
                            span: Span::call_site(),
                            shape_only: vec![],
                        },
                        out,
                    );
                }
            }
            Expr::Index(ix) => {
                let base = strip_parens(&ix.expr);
                let buf = match base {
                    Expr::Path(p) => p.path.get_ident().and_then(|i| self.lookup(&i.to_string())),
                    _ => None,
                };
                match buf.map(|b| (b, self.vars[b].sort)) {
                    Some((buf, Sort::Buffer)) => {
                        if self.sort_of(&ix.index) == Sort::Float {
                            self.cx.spanned(&ix.index, "indices must be integers, not floats");
                            return;
                        }
                        let index = self.verbatim(&ix.index);
                        let place = Place::Elem { buf, index: index.clone() };
                        match op {
                            None => self.assign_float(place, right, out),
                            Some(op) => {
                                let mut temps = Vec::new();
                                let old = self.temp(Rhs::Load { buf, index }, span, &mut temps);
                                let r = self.lower_float(right, out, &mut temps);
                                let value = self.temp(Rhs::Op { op, args: vec![old, r], int_arg: None }, span, &mut temps);
                                let site = self.site();
                                out.push(Stmt::Assign { site, place, temps, value, span });
                            }
                        }
                    }
                    Some((b, Sort::Slice)) => self.cx.spanned(base,
                        format!(
                            "cannot write to parameter `{}`: it is a shared reference; copy it into a \
                             local buffer (`let mut b = vec![0.0; n];`) and write that",
                            self.vars[b].name
                        ),
                    ),
                    _ if self.sort_of(right) == Sort::Float => self.cx.spanned(left,
                        "writing a float here is not supported: float values can be written to local \
                         buffers (`vec![0.0; n]`, `[0.0; N]`) and variables only",
                    ),
                    _ => self.plain(whole, out),
                }
            }
            Expr::Tuple(_) | Expr::Array(_) | Expr::Struct(_) | Expr::Call(_) => {
                self.lower_destructuring(left, binop, right, out)
            }
            _ if self.sort_of(right) == Sort::Float => self.cx.spanned(
                left,
                "#[gradient] can assign floats to local variables and local buffer elements only",
            ),
            _ => self.plain(whole, out),
        }
    }

    /// `(a, b) = (e, f)` or `[a, b] = [e, f]`: as Rust defines it, each right-hand element
    /// into a fresh variable first, then each place assigned in order (`_` skipped), every
    /// step lowered as its own statement (floats are differentiated, integer state is seen
    /// as written). Other forms (a right-hand side that is not a literal of the same shape and
    /// length, nested or `..` patterns, structs) are refused.
    fn lower_destructuring(
        &mut self,
        left: &Expr,
        binop: Option<&BinOp>,
        right: &Expr,
        out: &mut Vec<Stmt>,
    ) {
        let elems = |e: &Expr| -> Option<Vec<Expr>> {
            match strip_parens(e) {
                Expr::Tuple(t) => Some(t.elems.iter().cloned().collect()),
                Expr::Array(a) => Some(a.elems.iter().cloned().collect()),
                _ => None,
            }
        };
        let same_kind = matches!(
            (strip_parens(left), strip_parens(right)),
            (Expr::Tuple(_), Expr::Tuple(_)) | (Expr::Array(_), Expr::Array(_))
        );
        let (Some(places), Some(values), true, None) =
            (elems(left), elems(right), same_kind, binop)
        else {
            self.cx.spanned(
                left,
                "#[gradient] supports destructuring assignments of a tuple or array written out \
                 on both sides only (`(a, b) = (b, a * b);`): assign each variable in its own \
                 statement",
            );
            return;
        };
        let simple = |p: &Expr| {
            matches!(
                strip_parens(p),
                Expr::Infer(_) | Expr::Path(_) | Expr::Index(_)
            )
        };
        if places.len() != values.len() || !places.iter().all(simple) {
            self.cx.spanned(
                left,
                "#[gradient] supports destructuring assignments of as many plain places (`x`, \
                 `v[i]`, `_`) as values only: assign each variable in its own statement",
            );
            return;
        }
        // In a scope of their own: the fresh names are gone after the assignment.
        self.scoped(|this| {
            let mut temps = Vec::new();
            for v in &values {
                let t = quote::format_ident!("__destructured{}", this.vars.len());
                // (Parsing tokens printed from an expression cannot fail; if it did, the
                // place would be reported as unsupported, never a panic.)
                match syn::parse2::<SynStmt>(quote!(let #t = #v;)) {
                    Ok(SynStmt::Local(local)) => this.lower_local(&local, out),
                    _ => {
                        this.cx.spanned(v, "this value cannot be destructured here");
                        return;
                    }
                }
                temps.push(t);
            }
            for (p, t) in places.iter().zip(&temps) {
                if matches!(strip_parens(p), Expr::Infer(_)) {
                    continue;
                }
                match (
                    syn::parse2::<Expr>(quote!(#t)),
                    syn::parse2::<Expr>(quote!(#p = #t)),
                ) {
                    (Ok(value), Ok(whole)) => this.lower_assign(p, None, &value, &whole, out),
                    _ => this.cx.spanned(p, "this place cannot be assigned here"),
                }
            }
        });
    }

    /// `place = e` for a float expression `e`.
    fn assign_float(&mut self, place: Place, e: &Expr, out: &mut Vec<Stmt>) {
        let mut temps = Vec::new();
        let value = self.lower_float(e, out, &mut temps);
        let site = self.site();
        out.push(Stmt::Assign {
            site,
            place,
            temps,
            value,
            span: first_span(e),
        });
    }

    fn lower_if(&mut self, i: &syn::ExprIf, out: &mut Vec<Stmt>, sink: Sink) -> Exits {
        if let Expr::Let(l) = &*i.cond {
            self.cx
                .spanned(l, "#[gradient] does not support `if let`: use a plain `if`");
            return Exits::default();
        }
        let cond = self.verbatim(&i.cond);
        let flag = self.hidden_bool("cond");
        self.set(flag, cond, out);
        let mut then_stmts = Vec::new();
        let e1 = self.scoped(|l| l.lower_stmts(&i.then_branch.stmts, &mut then_stmts, sink));
        let mut else_stmts = Vec::new();
        let e2 = match &i.else_branch {
            None => {
                if let Sink::Var(v) = sink {
                    if self.vars[v].sort == Sort::Float && !i.then_branch.stmts.is_empty() {
                        self.cx
                            .error(i.span(), "an `if` used as a value needs an `else` branch");
                    }
                }
                Exits::default()
            }
            Some((_, e)) => match &**e {
                Expr::If(inner) => self.lower_if(inner, &mut else_stmts, sink),
                Expr::Block(b) => {
                    self.scoped(|l| l.lower_stmts(&b.block.stmts, &mut else_stmts, sink))
                }
                other => {
                    self.cx.spanned(other, "unexpected `else` branch");
                    Exits::default()
                }
            },
        };
        out.push(Stmt::If {
            flag,
            then_branch: Block { stmts: then_stmts },
            else_branch: Block { stmts: else_stmts },
        });
        e1.union(e2)
    }

    fn lower_for(&mut self, f: &syn::ExprForLoop, out: &mut Vec<Stmt>) -> Exits {
        if f.label.is_some() {
            self.cx
                .error(f.label.span(), "#[gradient] does not support loop labels: leave inner loops with a flag and a plain `break`");
        }
        let Some((start, end, adapters)) = self.loop_range(&f.expr) else {
            self.cx.spanned(
                &f.expr,
                "#[gradient] loops iterate over an integer range: write `for i in 0..n` (also \
                 `a..=b`, `(a..b).rev()`, `.step_by(k)`) and index slices with `x[i]`",
            );
            return Exits::default();
        };
        let start_v = self.new_var("lo", Sort::Int, Role::Hidden);
        self.set(start_v, start, out);
        let end_v = self.new_var("hi", Sort::Int, Role::Hidden);
        self.set(end_v, end, out);
        let mut ads = Vec::new();
        for a in adapters {
            match a {
                None => ads.push(Adapter::Rev),
                Some(step) => {
                    let v = self.new_var("step", Sort::Int, Role::Hidden);
                    self.set(v, step, out);
                    ads.push(Adapter::StepBy(v));
                }
            }
        }
        self.loops.push(LoopCtx {
            brk: None,
            cont: None,
        });
        let (index, body, exits) = self.scoped(|l| {
            let index = match &*f.pat {
                Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                    l.declare(&pi.ident, Sort::Int, Role::LoopIndex)
                }
                Pat::Wild(_) => l.new_var("_i", Sort::Int, Role::LoopIndex),
                other => {
                    l.cx.spanned(other, "the loop variable must be a plain name");
                    l.new_var("_i", Sort::Int, Role::LoopIndex)
                }
            };
            let mut body = Vec::new();
            let exits = l.lower_stmts(&f.body.stmts, &mut body, Sink::None);
            (index, body, exits)
        });
        let ctx = self.loops.pop().expect("loop");
        let body = self.loop_body(body, &ctx);
        let exit = if exits.brk || exits.ret {
            if let Some(b) = ctx.brk {
                self.set(
                    b,
                    Code {
                        tokens: quote!(false),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                    out,
                );
            }
            self.loops.push(LoopCtx {
                brk: ctx.brk,
                cont: None,
            });
            let stop = self.stop_code(Exits {
                ret: exits.ret,
                brk: exits.brk,
                cont: false,
            });
            self.loops.pop();
            let trips = self.new_var("trips", Sort::Int, Role::Hidden);
            let site = self.site();
            Some(LoopExit { stop, trips, site })
        } else {
            None
        };
        let id = self.site();
        out.push(Stmt::For {
            id,
            index,
            range: LoopRange {
                start: start_v,
                end: end_v,
                adapters: ads,
            },
            body,
            exit,
        });
        Exits {
            ret: exits.ret,
            ..Exits::default()
        }
    }

    /// Resets the `continue` flag at the start of every iteration.
    fn loop_body(&mut self, mut body: Vec<Stmt>, ctx: &LoopCtx) -> Block {
        if let Some(c) = ctx.cont {
            let site = self.site();
            body.insert(
                0,
                Stmt::Set {
                    site,
                    dst: c,
                    code: Code {
                        tokens: quote!(false),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                },
            );
        }
        Block { stmts: body }
    }

    /// `a..b`, `a..=b`, then `.rev()` (`None`) and `.step_by(k)` (`Some(k)`) adapters in order.
    #[allow(clippy::type_complexity)]
    fn loop_range(&mut self, e: &Expr) -> Option<(Code, Code, Vec<Option<Code>>)> {
        match strip_parens(e) {
            Expr::Range(r) => {
                let start = self.verbatim(r.start.as_ref()?);
                let end = self.verbatim(r.end.as_ref()?);
                let end = match r.limits {
                    syn::RangeLimits::HalfOpen(_) => end,
                    syn::RangeLimits::Closed(_) => {
                        let t = &end.tokens;
                        Code {
                            tokens: quote!((#t) + 1),
                            reads: end.reads,
                            span: Span::call_site(),
                            shape_only: vec![],
                        }
                    }
                };
                Some((start, end, Vec::new()))
            }
            Expr::MethodCall(m) if m.method == "rev" && m.args.is_empty() => {
                let (s, e, mut a) = self.loop_range(&m.receiver)?;
                a.push(None);
                Some((s, e, a))
            }
            Expr::MethodCall(m) if m.method == "step_by" && m.args.len() == 1 => {
                let (s, e, mut a) = self.loop_range(&m.receiver)?;
                let step = self.verbatim(&m.args[0]);
                a.push(Some(step));
                Some((s, e, a))
            }
            _ => None,
        }
    }

    fn lower_while(
        &mut self,
        cond: Option<&Expr>,
        body_block: &syn::Block,
        label: Option<&syn::Label>,
        out: &mut Vec<Stmt>,
    ) -> Exits {
        if let Some(l) = label {
            self.cx
                .error(l.span(), "#[gradient] does not support loop labels: leave inner loops with a flag and a plain `break`");
        }
        if let Some(Expr::Let(l)) = cond {
            self.cx.spanned(
                l,
                "#[gradient] does not support `while let`: use `while` or `loop`",
            );
            return Exits::default();
        }
        let flag = self.hidden_bool("more");
        let mut cond_stmts = Vec::new();
        let code = match cond {
            Some(c) => self.verbatim(c),
            None => Code {
                tokens: quote!(true),
                reads: vec![],
                span: Span::call_site(),
                shape_only: vec![],
            },
        };
        self.set(flag, code, &mut cond_stmts);
        self.loops.push(LoopCtx {
            brk: None,
            cont: None,
        });
        let (body, exits) = self.scoped(|l| {
            let mut body = Vec::new();
            let exits = l.lower_stmts(&body_block.stmts, &mut body, Sink::None);
            (body, exits)
        });
        let ctx = self.loops.pop().expect("loop");
        let body = self.loop_body(body, &ctx);
        let stop = if exits.brk || exits.ret {
            if let Some(b) = ctx.brk {
                self.set(
                    b,
                    Code {
                        tokens: quote!(false),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                    out,
                );
            }
            self.loops.push(LoopCtx {
                brk: ctx.brk,
                cont: None,
            });
            let stop = self.stop_code(Exits {
                ret: exits.ret,
                brk: exits.brk,
                cont: false,
            });
            self.loops.pop();
            Some(stop)
        } else {
            None
        };
        let trips = self.new_var("trips", Sort::Int, Role::Hidden);
        let site = self.site();
        out.push(Stmt::While {
            cond: Block { stmts: cond_stmts },
            flag,
            body,
            trips,
            site,
            stop,
        });
        Exits {
            ret: exits.ret,
            ..Exits::default()
        }
    }

    // ----- expressions -----

    /// The syntactic sort of an expression, without lowering it.
    fn sort_of(&self, e: &Expr) -> Sort {
        self.sort_in(e, &[])
    }

    /// `sort_of` with the locals of enclosing blocks of `e` (innermost last), which are not in
    /// scope yet while the block is only being looked at.
    fn sort_in(&self, e: &Expr, extra: &[HashMap<String, Sort>]) -> Sort {
        match e {
            Expr::Lit(l) => match &l.lit {
                Lit::Float(_) => Sort::Float,
                Lit::Int(i) if i.suffix() == "f64" || i.suffix() == "f32" => Sort::Float,
                Lit::Int(_) => Sort::Int,
                Lit::Bool(_) => Sort::Bool,
                _ => Sort::Opaque,
            },
            Expr::Path(p) => {
                if let Some(id) = p.path.get_ident() {
                    let name = id.to_string();
                    if let Some(s) = extra.iter().rev().find_map(|m| m.get(&name)) {
                        return *s;
                    }
                    if let Some(v) = self.lookup(&name) {
                        return self.vars[v].sort;
                    }
                }
                if float_const_path(&p.path) {
                    Sort::Float
                } else {
                    Sort::Opaque
                }
            }
            Expr::Paren(p) => self.sort_in(&p.expr, extra),
            Expr::Group(g) => self.sort_in(&g.expr, extra),
            Expr::Reference(r) if r.mutability.is_none() => match strip_parens(&r.expr) {
                // `&x[a..b]`: a slice (refused where it is used, with a message that says so).
                Expr::Index(i) if matches!(strip_parens(&i.index), Expr::Range(_)) => {
                    match self.sort_in(&i.expr, extra) {
                        Sort::Slice | Sort::Buffer => Sort::Slice,
                        _ => Sort::Opaque,
                    }
                }
                inner => match self.sort_in(inner, extra) {
                    s @ (Sort::Slice | Sort::Buffer) => s,
                    _ => Sort::Opaque,
                },
            },
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => self.sort_in(&u.expr, extra),
                UnOp::Not(_) => match self.sort_in(&u.expr, extra) {
                    Sort::Int => Sort::Int,
                    Sort::Bool => Sort::Bool,
                    _ => Sort::Opaque,
                },
                _ => Sort::Opaque,
            },
            Expr::Binary(b) => match b.op {
                BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_) | BinOp::Rem(_) => {
                    let (l, r) = (self.sort_in(&b.left, extra), self.sort_in(&b.right, extra));
                    if l == Sort::Float || r == Sort::Float {
                        Sort::Float
                    } else if l == Sort::Int && r == Sort::Int {
                        Sort::Int
                    } else {
                        Sort::Opaque
                    }
                }
                BinOp::Eq(_)
                | BinOp::Ne(_)
                | BinOp::Lt(_)
                | BinOp::Le(_)
                | BinOp::Gt(_)
                | BinOp::Ge(_)
                | BinOp::And(_)
                | BinOp::Or(_) => Sort::Bool,
                _ if plain_op(&b.op).is_some() => Sort::Opaque,
                _ => match (self.sort_in(&b.left, extra), self.sort_in(&b.right, extra)) {
                    (Sort::Int, Sort::Int) => Sort::Int,
                    _ => Sort::Opaque,
                },
            },
            Expr::Cast(c) => {
                if float_type(&c.ty).is_some() {
                    Sort::Float
                } else if is_int_type(&c.ty) {
                    Sort::Int
                } else {
                    Sort::Opaque
                }
            }
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                match self.sort_in(&m.receiver, extra) {
                    Sort::Float if is_inactive_float_method(&name) => {
                        if name.starts_with("is_") {
                            Sort::Bool
                        } else {
                            Sort::Opaque
                        }
                    }
                    Sort::Float => Sort::Float,
                    Sort::Slice | Sort::Buffer if name == "len" => Sort::Int,
                    Sort::Int
                        if matches!(
                            name.as_str(),
                            "min"
                                | "max"
                                | "pow"
                                | "abs"
                                | "saturating_sub"
                                | "wrapping_add"
                                | "clamp"
                        ) =>
                    {
                        Sort::Int
                    }
                    _ => Sort::Opaque,
                }
            }
            Expr::Call(c) => {
                if let Expr::Path(p) = &*c.func {
                    // `f64::sin(x)`; `f64::from_bits(n)` with no float argument is inactive.
                    if let Some(name) = path_intrinsic(p) {
                        let known = Op::method(&name.to_string()).is_some();
                        if known || c.args.iter().any(|a| self.sort_in(a, extra) == Sort::Float) {
                            return Sort::Float;
                        }
                        return Sort::Opaque;
                    }
                    if path_float_conversion(&p.path) {
                        return Sort::Float;
                    }
                }
                if c.args.iter().any(|a| {
                    matches!(
                        self.sort_in(a, extra),
                        Sort::Float | Sort::Slice | Sort::Buffer
                    )
                }) {
                    Sort::Float
                } else {
                    Sort::Opaque
                }
            }
            Expr::Index(i) => match self.sort_in(&i.expr, extra) {
                Sort::Slice | Sort::Buffer => Sort::Float,
                _ => Sort::Opaque,
            },
            Expr::If(i) => {
                let t = self.block_sort(&i.then_branch, extra);
                let el = i.else_branch.as_ref().map(|(_, e)| self.sort_in(e, extra));
                if t == Some(Sort::Float) || el == Some(Sort::Float) {
                    Sort::Float
                } else {
                    t.or(el).unwrap_or(Sort::Opaque)
                }
            }
            Expr::Block(b) => self.block_sort(&b.block, extra).unwrap_or(Sort::Opaque),
            _ => Sort::Opaque,
        }
    }

    /// The sort of a block's tail, seeing the block's own `let`s.
    fn block_sort(&self, b: &syn::Block, extra: &[HashMap<String, Sort>]) -> Option<Sort> {
        let mut scopes = extra.to_vec();
        scopes.push(HashMap::new());
        for stmt in &b.stmts {
            if let SynStmt::Local(local) = stmt {
                let (ident, ty) = match &local.pat {
                    Pat::Ident(pi) => (&pi.ident, None),
                    Pat::Type(pt) => match &*pt.pat {
                        Pat::Ident(pi) => (&pi.ident, Some(&*pt.ty)),
                        _ => continue,
                    },
                    _ => continue,
                };
                let sort = match (ty, &local.init) {
                    (Some(t), _) if float_type(t).is_some_and(|t| t == self.float) => Sort::Float,
                    (Some(t), _) if is_int_type(t) => Sort::Int,
                    (Some(_), _) => Sort::Opaque,
                    (None, Some(init)) => self.sort_in(&init.expr, &scopes),
                    (None, None) => Sort::Opaque,
                };
                scopes
                    .last_mut()
                    .expect("scope")
                    .insert(ident.to_string(), sort);
            }
        }
        match b.stmts.last() {
            Some(SynStmt::Expr(e, None)) => Some(self.sort_in(e, &scopes)),
            _ => None,
        }
    }

    /// Lowers a float expression into `temps`; regions (`if`, blocks) go to `out`.
    fn lower_float(&mut self, e: &Expr, out: &mut Vec<Stmt>, temps: &mut Vec<Node>) -> Operand {
        let span = first_span(e);
        match e {
            Expr::Lit(l) => match &l.lit {
                Lit::Float(_) => Operand::Const(l.to_token_stream()),
                Lit::Int(i) => {
                    let f = &self.float;
                    let digits = i.base10_digits();
                    let lit = syn::LitFloat::new(&format!("{digits}.0{f}"), i.span());
                    Operand::Const(lit.to_token_stream())
                }
                _ => {
                    self.cx.spanned(e, "expected a number here");
                    Operand::Const(quote!(0.0))
                }
            },
            Expr::Path(p) => {
                if let Some(id) = p.path.get_ident() {
                    if let Some(v) = self.lookup(&id.to_string()) {
                        return match self.vars[v].sort {
                            Sort::Float => Operand::Var(v),
                            Sort::Slice | Sort::Buffer => {
                                self.cx
                                    .error(span, "a slice is used where a float is expected");
                                Operand::Const(quote!(0.0))
                            }
                            _ => self.inactive_temp(e, temps),
                        };
                    }
                }
                if float_const_path(&p.path) {
                    Operand::Const(quote_spanned!(span=> (#p)))
                } else {
                    self.inactive_temp(e, temps)
                }
            }
            Expr::Paren(p) => self.lower_float(&p.expr, out, temps),
            Expr::Group(g) => self.lower_float(&g.expr, out, temps),
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
                let a = self.lower_float(&u.expr, out, temps);
                self.temp(
                    Rhs::Op {
                        op: Op::Neg,
                        args: vec![a],
                        int_arg: None,
                    },
                    span,
                    temps,
                )
            }
            Expr::Binary(b) => {
                let op = match b.op {
                    BinOp::Add(_) => Op::Add,
                    BinOp::Sub(_) => Op::Sub,
                    BinOp::Mul(_) => Op::Mul,
                    BinOp::Div(_) => Op::Div,
                    BinOp::Rem(_) => Op::Rem,
                    _ => {
                        self.cx.spanned(b.op,
                            "this operator is not supported on floats in #[gradient] functions: use \
                             + - * / % and float methods",
                        );
                        return Operand::Const(quote!(0.0));
                    }
                };
                let l = self.lower_float(&b.left, out, temps);
                let r = self.lower_float(&b.right, out, temps);
                self.temp(
                    Rhs::Op {
                        op,
                        args: vec![l, r],
                        int_arg: None,
                    },
                    span,
                    temps,
                )
            }
            Expr::MethodCall(m) => {
                if self.sort_of(&m.receiver) != Sort::Float {
                    return self.inactive_temp(e, temps);
                }
                let args: Vec<&Expr> = std::iter::once(&*m.receiver).chain(m.args.iter()).collect();
                self.intrinsic(&m.method, &args, span, out, temps)
            }
            Expr::Call(c) => {
                if let Expr::Path(p) = &*c.func {
                    if let Some(name) = path_intrinsic(p).filter(|_| self.sort_of(e) == Sort::Float)
                    {
                        let args: Vec<&Expr> = c.args.iter().collect();
                        if args.is_empty() {
                            self.cx.spanned(e, "missing argument");
                            return Operand::Const(quote!(0.0));
                        }
                        return self.intrinsic(&name, &args, span, out, temps);
                    }
                    if path_float_conversion(&p.path) {
                        if c.args.len() == 1 && self.sort_of(&c.args[0]) == Sort::Float {
                            return self.lower_float(&c.args[0], out, temps);
                        }
                        return self.inactive_temp(e, temps);
                    }
                    let is_diff = c.args.iter().any(|a| {
                        matches!(self.sort_of(a), Sort::Float | Sort::Slice | Sort::Buffer)
                    });
                    if !is_diff {
                        return self.inactive_temp(e, temps);
                    }
                    let mut args = Vec::new();
                    for a in &c.args {
                        match self.sort_of(a) {
                            Sort::Float => {
                                args.push(CallArg::Float(self.lower_float(a, out, temps)))
                            }
                            Sort::Slice | Sort::Buffer => match strip_parens(a) {
                                Expr::Path(p) if p.path.get_ident().is_some() => {
                                    let v = self
                                        .lookup(&p.path.get_ident().expect("ident").to_string())
                                        .expect("var");
                                    args.push(CallArg::Slice(v));
                                }
                                Expr::Reference(r)
                                    if matches!(strip_parens(&r.expr), Expr::Path(_)) =>
                                {
                                    let Expr::Path(p) = strip_parens(&r.expr) else {
                                        unreachable!()
                                    };
                                    match p
                                        .path
                                        .get_ident()
                                        .and_then(|i| self.lookup(&i.to_string()))
                                    {
                                        Some(v) => args.push(CallArg::Slice(v)),
                                        None => {
                                            self.cx.spanned(a, "pass a slice variable here");
                                            return Operand::Const(quote!(0.0));
                                        }
                                    }
                                }
                                _ => {
                                    self.cx.spanned(
                                        a,
                                        "pass a slice or buffer by name here (`x` or `&buf`): \
                                         sub-slices (`&x[a..b]`) are not supported in \
                                         #[gradient] functions",
                                    );
                                    return Operand::Const(quote!(0.0));
                                }
                            },
                            _ => args.push(CallArg::Other(self.verbatim(a))),
                        }
                    }
                    return self.temp(
                        Rhs::Call {
                            path: p.path.clone(),
                            args,
                        },
                        span,
                        temps,
                    );
                }
                self.cx.spanned(
                    &c.func,
                    "only calls to named functions can be differentiated",
                );
                Operand::Const(quote!(0.0))
            }
            Expr::Index(ix) => {
                let base = strip_parens(&ix.expr);
                let buf = match base {
                    Expr::Path(p) => p.path.get_ident().and_then(|i| self.lookup(&i.to_string())),
                    _ => None,
                };
                match buf {
                    Some(b) if matches!(self.vars[b].sort, Sort::Slice | Sort::Buffer) => {
                        if self.sort_of(&ix.index) == Sort::Float {
                            self.cx
                                .error(ix.index.span(), "indices must be integers, not floats");
                        }
                        if matches!(&*ix.index, Expr::Range(_)) {
                            self.cx.spanned(&ix.index, "sub-slices (`x[a..b]`) are not supported: index elements with `x[i]`");
                        }
                        let index = self.verbatim(&ix.index);
                        self.temp(Rhs::Load { buf: b, index }, span, temps)
                    }
                    _ => self.inactive_temp(e, temps),
                }
            }
            Expr::Cast(c) => {
                if self.sort_of(&c.expr) == Sort::Float {
                    match float_type(&c.ty) {
                        Some(t) if t == self.float => self.lower_float(&c.expr, out, temps),
                        _ => {
                            self.cx.spanned(c,
                                format!(
                                    "casting a float to another type is not differentiable here: all \
                                     floats of this function must stay `{}`",
                                    self.float
                                ),
                            );
                            Operand::Const(quote!(0.0))
                        }
                    }
                } else {
                    self.inactive_temp(e, temps)
                }
            }
            Expr::If(i) if self.sort_of(e) == Sort::Float => {
                let v = self.new_var("_if", Sort::Float, Role::Local);
                let exits = self.lower_if(i, out, Sink::Var(v));
                if exits.any() {
                    self.cx.spanned(
                        e,
                        "`return`, `break` and `continue` inside an `if` used as a value are not \
                         supported: use an `if` statement",
                    );
                }
                Operand::Var(v)
            }
            Expr::Block(b) if b.label.is_none() && self.sort_of(e) == Sort::Float => {
                let v = self.new_var("_blk", Sort::Float, Role::Local);
                let exits = self.scoped(|l| l.lower_stmts(&b.block.stmts, out, Sink::Var(v)));
                if exits.any() {
                    self.cx.spanned(e, "`return`, `break` and `continue` inside a block used as a value are not supported");
                }
                Operand::Var(v)
            }
            Expr::Closure(_) => {
                self.cx.spanned(e, "closures are not supported in #[gradient] functions: write a separate #[gradient] function and call it");
                Operand::Const(quote!(0.0))
            }
            Expr::Unsafe(u) => {
                self.cx.error(
                    u.unsafe_token.span,
                    "`unsafe` is not supported in #[gradient] functions",
                );
                Operand::Const(quote!(0.0))
            }
            _ => {
                if self.sort_of(e) == Sort::Float {
                    self.cx.spanned(e, format!("{} is not supported in a float expression of a #[gradient] function; supported: arithmetic, float methods, `if`/`else`, blocks, calls to #[gradient] functions, indexing of float slices", describe(e)));
                    return Operand::Const(quote!(0.0));
                }
                self.inactive_temp(e, temps)
            }
        }
    }

    /// An inactive float value: kept as written, in a temporary.
    fn inactive_temp(&mut self, e: &Expr, temps: &mut Vec<Node>) -> Operand {
        let code = self.verbatim(e);
        if code.reads.is_empty() {
            let t = code.tokens;
            return Operand::Const(quote!((#t)));
        }
        self.temp(Rhs::Expr(code), first_span(e), temps)
    }

    fn intrinsic(
        &mut self,
        method: &syn::Ident,
        args: &[&Expr],
        span: Span,
        out: &mut Vec<Stmt>,
        temps: &mut Vec<Node>,
    ) -> Operand {
        let name = method.to_string();
        let Some(op) = Op::method(&name) else {
            let hint = if name == "sin_cos" {
                " (call `sin` and `cos` separately)"
            } else {
                ""
            };
            self.cx.spanned(method,
                format!("the float method `{name}` has no derivative rule{hint}; differentiable methods are: sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh exp exp2 exp_m1 ln log log2 log10 ln_1p sqrt cbrt powi powf recip abs signum hypot mul_add max min clamp to_radians to_degrees floor ceil round trunc fract copysign"),
            );
            return Operand::Const(quote!(0.0));
        };
        let arity = op.kind().arity();
        let expected = if op == Op::Powi { 2 } else { arity };
        if args.len() != expected {
            self.cx
                .error(span, format!("`{name}` takes {} argument(s)", expected - 1));
            return Operand::Const(quote!(0.0));
        }
        let mut ops = Vec::new();
        for a in &args[..arity] {
            ops.push(self.lower_float(a, out, temps));
        }
        let int_arg = if op == Op::Powi {
            Some(self.verbatim(args[1]))
        } else {
            None
        };
        self.temp(
            Rhs::Op {
                op,
                args: ops,
                int_arg,
            },
            span,
            temps,
        )
    }

    /// Inactive code: the expression as written, with variables renamed.
    fn verbatim(&mut self, e: &Expr) -> Code {
        let span = first_span(e);
        let mut e = e.clone();
        let mut r = Renamer {
            l: self,
            bound: Vec::new(),
            reads: Vec::new(),
            shape_reads: Vec::new(),
        };
        r.visit_expr_mut(&mut e);
        let mut reads = r.reads;
        reads.sort_unstable();
        reads.dedup();
        let mut shape_only = r.shape_reads;
        shape_only.retain(|v| !reads.contains(v));
        shape_only.sort_unstable();
        shape_only.dedup();
        reads.extend(shape_only.iter().copied());
        Code {
            tokens: e.to_token_stream(),
            reads,
            shape_only,
            span,
        }
    }

    fn buffer_init(&mut self, e: &Expr) -> Option<BufInit> {
        let f = self.float.clone();
        match strip_parens(e) {
            Expr::Repeat(r) if self.sort_of(&r.expr) == Sort::Float => {
                let c = self.verbatim(&r.expr);
                if !c.reads.is_empty() {
                    self.cx.spanned(&r.expr, "initialise a local buffer with a constant (`[0.0; N]`), then write its elements");
                }
                let len = &r.len;
                let t = &c.tokens;
                Some(BufInit {
                    init: Code {
                        tokens: quote!([#t as ::core::primitive::#f; #len]),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                    array_len: Some(quote!(#len)),
                    elems: vec![],
                })
            }
            Expr::Array(a)
                if !a.elems.is_empty()
                    && a.elems.iter().any(|x| self.sort_of(x) == Sort::Float) =>
            {
                let n = a.elems.len();
                Some(BufInit {
                    init: Code {
                        tokens: quote!([0.0 as ::core::primitive::#f; #n]),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                    array_len: Some(quote!(#n)),
                    elems: a.elems.iter().cloned().collect(),
                })
            }
            Expr::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == "vec") => {
                if let Ok(r) = m.mac.parse_body_with(parse_repeat) {
                    if self.sort_of(&r.0) == Sort::Float {
                        let c = self.verbatim(&r.0);
                        if !c.reads.is_empty() {
                            self.cx.spanned(&r.0, "initialise a local buffer with a constant (`vec![0.0; n]`), then write its elements");
                        }
                        let n = self.verbatim(&r.1);
                        let (t, nt) = (&c.tokens, &n.tokens);
                        return Some(BufInit {
                            init: Code {
                                tokens: quote!(::std::vec![#t as ::core::primitive::#f; #nt]),
                                reads: n.reads,
                                span: Span::call_site(),
                                shape_only: vec![],
                            },
                            array_len: None,
                            elems: vec![],
                        });
                    }
                    return None;
                }
                let list = m
                    .mac
                    .parse_body_with(
                        syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated,
                    )
                    .ok()?;
                if list.is_empty() || !list.iter().any(|x| self.sort_of(x) == Sort::Float) {
                    return None;
                }
                let n = list.len();
                Some(BufInit {
                    init: Code {
                        tokens: quote!(::std::vec![0.0 as ::core::primitive::#f; #n]),
                        reads: vec![],
                        span: Span::call_site(),
                        shape_only: vec![],
                    },
                    array_len: None,
                    elems: list.into_iter().collect(),
                })
            }
            _ => None,
        }
    }
}

/// What `let y = <memory>;` makes of `y`.
enum MemoryInit {
    /// Another name for the same slice or buffer.
    Alias(VarId),
    /// A copy of a local array.
    Copy(VarId),
}

struct BufInit {
    init: Code,
    array_len: Option<TokenStream>,
    elems: Vec<Expr>,
}

fn parse_repeat(input: syn::parse::ParseStream) -> syn::Result<(Expr, Expr)> {
    let e: Expr = input.parse()?;
    input.parse::<syn::Token![;]>()?;
    let n: Expr = input.parse()?;
    Ok((e, n))
}

/// Renames the variables of inactive code and records which it reads.
struct Renamer<'a, 'b> {
    l: &'a mut Lowerer<'b>,
    /// Names bound inside the code itself (`{ let x = ...; x }`, match arms): not renamed.
    bound: Vec<std::collections::HashSet<String>>,
    reads: Vec<VarId>,
    /// Slices and buffers read through `.len()` / `.is_empty()`.
    shape_reads: Vec<VarId>,
}

impl VisitMut for Renamer<'_, '_> {
    fn visit_block_mut(&mut self, b: &mut syn::Block) {
        self.bound.push(Default::default());
        for stmt in &mut b.stmts {
            match stmt {
                SynStmt::Local(local) => {
                    if let Some(init) = &mut local.init {
                        self.visit_expr_mut(&mut init.expr);
                        if let Some((_, e)) = &mut init.diverge {
                            self.visit_expr_mut(e);
                        }
                    }
                    self.bind(&local.pat);
                }
                other => self.visit_stmt_mut(other),
            }
        }
        self.bound.pop();
    }

    fn visit_arm_mut(&mut self, arm: &mut syn::Arm) {
        self.bound.push(Default::default());
        self.bind(&arm.pat);
        if let Some((_, guard)) = &mut arm.guard {
            self.visit_expr_mut(guard);
        }
        self.visit_expr_mut(&mut arm.body);
        self.bound.pop();
    }

    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Path(p) if p.qself.is_none() => {
                if let Some(id) = p.path.get_ident().filter(|i| !self.is_bound(i)) {
                    if let Some(v) = self.l.lookup(&id.to_string()) {
                        self.reads.push(v);
                        let ident = crate::emit::var_ident(&self.l.vars[v], v);
                        *e = syn::parse_quote!(#ident);
                    }
                }
            }
            Expr::MethodCall(m) if self.memory_var(&m.receiver).is_some() => {
                let v = self.memory_var(&m.receiver).expect("memory");
                let name = self.l.vars[v].name.clone();
                let method = m.method.to_string();
                if method == "len" || method == "is_empty" {
                    self.shape_reads.push(v);
                    let ident = crate::emit::var_ident(&self.l.vars[v], v);
                    *m.receiver = syn::parse_quote!(#ident);
                } else {
                    self.l.cx.spanned(
                        &m.method,
                        format!(
                            "`.{method}()` on the float slice `{name}` is not supported in \
                             #[gradient] functions: write an index loop (`for i in 0..{name}.len()`) \
                             and read `{name}[i]`"
                        ),
                    );
                }
                for a in m.args.iter_mut() {
                    self.visit_expr_mut(a);
                }
            }
            Expr::Index(ix)
                if matches!(strip_parens(&ix.index), Expr::Range(_))
                    && self.memory_var(&ix.expr).is_some() =>
            {
                self.l.cx.spanned(
                    &*ix,
                    "sub-slices (`x[a..b]`) are not supported in #[gradient] functions: index \
                     elements with `x[i]` and loop over a range; pass the whole slice to calls",
                );
            }
            Expr::Assign(a) => {
                self.refuse_local_write(&a.left, a.left.span());
                syn::visit_mut::visit_expr_assign_mut(self, a);
            }
            Expr::Binary(b) if plain_op(&b.op).is_some() => {
                self.refuse_local_write(&b.left, b.left.span());
                syn::visit_mut::visit_expr_binary_mut(self, b);
            }
            Expr::Reference(r) if r.mutability.is_some() => {
                if let Expr::Path(p) = strip_parens(&r.expr) {
                    if let Some(v) = p
                        .path
                        .get_ident()
                        .and_then(|i| self.l.lookup(&i.to_string()))
                    {
                        if self.l.vars[v].sort != Sort::Opaque {
                            let name = self.l.vars[v].name.clone();
                            self.l.cx.spanned(
                                &*r,
                                format!(
                                    "`&mut {name}` is not supported in #[gradient] functions: a change \
                                     made through it would be invisible to the reverse sweep; assign \
                                     `{name}` directly (`{name} = ...`)"
                                ),
                            );
                        }
                    }
                }
                syn::visit_mut::visit_expr_reference_mut(self, r);
            }
            Expr::Closure(c) => {
                self.l.cx.spanned(&c,
                    "closures are not supported in #[gradient] functions: write a loop, or a separate \
                     #[gradient] function",
                );
            }
            Expr::Unsafe(u) => {
                self.l.cx.error(
                    u.unsafe_token.span,
                    "`unsafe` is not supported in #[gradient] functions",
                );
            }
            Expr::Macro(m) => {
                let bindings = self.bindings(&m.mac.tokens);
                if !bindings.is_empty() {
                    let mac = m.clone();
                    *e = syn::parse_quote!({ #(#bindings)* #mac });
                }
            }
            Expr::Struct(s) => {
                for f in s.fields.iter_mut() {
                    if f.colon_token.is_none() {
                        f.colon_token = Some(Default::default());
                    }
                }
                syn::visit_mut::visit_expr_struct_mut(self, s);
            }
            _ => syn::visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_stmt_mut(&mut self, s: &mut SynStmt) {
        if let SynStmt::Macro(m) = s {
            let bindings = self.bindings(&m.mac.tokens);
            if !bindings.is_empty() {
                let mac = m.mac.clone();
                *s = syn::parse_quote!({ #(#bindings)* #mac; });
            }
            return;
        }
        syn::visit_mut::visit_stmt_mut(self, s);
    }
}

impl Renamer<'_, '_> {
    fn is_bound(&self, i: &syn::Ident) -> bool {
        let name = i.to_string();
        self.bound.iter().any(|set| set.contains(&name))
    }

    /// Records the names a pattern binds in the innermost scope of the kept code.
    fn bind(&mut self, pat: &Pat) {
        struct Names(Vec<String>);
        impl<'ast> syn::visit::Visit<'ast> for Names {
            fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
                self.0.push(p.ident.to_string());
                syn::visit::visit_pat_ident(self, p);
            }
        }
        let mut names = Names(Vec::new());
        syn::visit::Visit::visit_pat(&mut names, pat);
        if let Some(set) = self.bound.last_mut() {
            set.extend(names.0);
        }
    }

    /// The slice or buffer variable `e` names, if any.
    fn memory_var(&self, e: &Expr) -> Option<VarId> {
        match strip_parens(e) {
            Expr::Path(p) => {
                let v = self.l.lookup(&p.path.get_ident()?.to_string())?;
                matches!(self.l.vars[v].sort, Sort::Slice | Sort::Buffer).then_some(v)
            }
            _ => None,
        }
    }

    /// Code kept as written must not write the function's variables: the analyses would not
    /// see the write.
    fn refuse_local_write(&mut self, target: &Expr, span: Span) {
        let mut base = strip_parens(target);
        while let Expr::Index(i) = base {
            base = strip_parens(&i.expr);
        }
        if let Expr::Path(p) = base {
            if let Some(v) = p
                .path
                .get_ident()
                .and_then(|i| self.l.lookup(&i.to_string()))
            {
                if self.l.vars[v].sort == Sort::Opaque {
                    return;
                }
                let name = self.l.vars[v].name.clone();
                self.l.cx.error(
                    span,
                    format!(
                        "assigning `{name}` inside an expression is not supported in #[gradient] \
                         functions: make it a statement of its own"
                    ),
                );
            }
        }
    }

    /// `let name = renamed;` for every variable in scope that a macro's tokens may mention
    /// (also inside format strings).
    fn bindings(&mut self, tokens: &TokenStream) -> Vec<TokenStream> {
        let mut words = Vec::new();
        collect_words(tokens.clone(), &mut words);
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for scope in self.l.scopes.iter().rev() {
            for (name, &v) in scope {
                let bound = self.bound.iter().any(|set| set.contains(name));
                if bound || seen.contains(name) || !words.iter().any(|w| w.contains(name.as_str()))
                {
                    continue;
                }
                seen.insert(name.clone());
                let var = &self.l.vars[v];
                let Some(user) = var.user_ident.clone() else {
                    continue;
                };
                let ident = crate::emit::var_ident(var, v);
                self.reads.push(v);
                out.push(match var.sort {
                    Sort::Float | Sort::Int | Sort::Bool | Sort::Slice => {
                        quote!(#[allow(unused_variables)] let #user = #ident;)
                    }
                    _ => quote!(#[allow(unused_variables)] let #user = &#ident;),
                });
            }
        }
        out
    }
}

fn collect_words(tokens: TokenStream, out: &mut Vec<String>) {
    for t in tokens {
        match t {
            TokenTree::Ident(i) => out.push(i.to_string()),
            TokenTree::Literal(l) => out.push(l.to_string()),
            TokenTree::Group(g) => collect_words(g.stream(), out),
            TokenTree::Punct(_) => {}
        }
    }
}

fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        Expr::Group(g) => strip_parens(&g.expr),
        _ => e,
    }
}

/// An `if` or a block with statements: its value is computed by a region.
fn is_region(e: &Expr) -> bool {
    match strip_parens(e) {
        Expr::If(_) => true,
        Expr::Block(b) => b.label.is_none() && b.block.stmts.len() > 1,
        _ => false,
    }
}

fn is_unit_like(e: &Expr) -> bool {
    matches!(
        e,
        Expr::If(_)
            | Expr::ForLoop(_)
            | Expr::While(_)
            | Expr::Loop(_)
            | Expr::Return(_)
            | Expr::Macro(_)
            | Expr::Assign(_)
            | Expr::Block(_)
    ) || matches!(e, Expr::Binary(b) if plain_op(&b.op).is_some())
}

fn compound_op(op: &BinOp) -> Option<Op> {
    match op {
        BinOp::AddAssign(_) => Some(Op::Add),
        BinOp::SubAssign(_) => Some(Op::Sub),
        BinOp::MulAssign(_) => Some(Op::Mul),
        BinOp::DivAssign(_) => Some(Op::Div),
        BinOp::RemAssign(_) => Some(Op::Rem),
        _ => None,
    }
}

/// The plain operator of a compound assignment (`+` for `+=`), for inactive code.
fn plain_op(op: &BinOp) -> Option<TokenStream> {
    Some(match op {
        BinOp::AddAssign(_) => quote!(+),
        BinOp::SubAssign(_) => quote!(-),
        BinOp::MulAssign(_) => quote!(*),
        BinOp::DivAssign(_) => quote!(/),
        BinOp::RemAssign(_) => quote!(%),
        BinOp::BitXorAssign(_) => quote!(^),
        BinOp::BitAndAssign(_) => quote!(&),
        BinOp::BitOrAssign(_) => quote!(|),
        BinOp::ShlAssign(_) => quote!(<<),
        BinOp::ShrAssign(_) => quote!(>>),
        _ => return None,
    })
}

fn float_const_path(p: &syn::Path) -> bool {
    let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
    let Some(last) = segs.last() else {
        return false;
    };
    if !is_float_const(last) || segs.len() < 2 {
        return false;
    }
    segs[..segs.len() - 1]
        .iter()
        .any(|s| s == "f64" || s == "f32")
        && segs[..segs.len() - 1].iter().all(|s| {
            matches!(
                s.as_str(),
                "std" | "core" | "f64" | "f32" | "consts" | "primitive"
            )
        })
}

/// `f64::sin` (also `std::f64::sin`... and `f32::`): the method name.
fn path_intrinsic(e: &syn::ExprPath) -> Option<syn::Ident> {
    if let Some(q) = &e.qself {
        // `<f64>::sin(x)`
        return match (float_type(&q.ty), e.path.segments.last()) {
            (Some(_), Some(last)) if q.position == 0 && e.path.segments.len() == 1 => {
                Some(last.ident.clone())
            }
            _ => None,
        };
    }
    let p = &e.path;
    let n = p.segments.len();
    if n < 2 {
        return None;
    }
    let ty = &p.segments[n - 2].ident;
    let last = &p.segments[n - 1].ident;
    if (ty == "f64" || ty == "f32") && !is_float_const(&last.to_string()) && last != "from" {
        Some(last.clone())
    } else {
        None
    }
}

fn path_float_conversion(p: &syn::Path) -> bool {
    let n = p.segments.len();
    n >= 2
        && (p.segments[n - 2].ident == "f64" || p.segments[n - 2].ident == "f32")
        && p.segments[n - 1].ident == "from"
}

fn item_span(item: &syn::Item) -> Span {
    match item {
        syn::Item::Fn(f) => f.sig.ident.span(),
        other => other.span(),
    }
}

fn describe(e: &Expr) -> &'static str {
    match e {
        Expr::Match(_) => "`match`",
        Expr::Closure(_) => "a closure",
        Expr::Async(_) => "`async`",
        Expr::Await(_) => "`.await`",
        Expr::Try(_) => "the `?` operator",
        Expr::Tuple(_) => "a tuple",
        Expr::Array(_) => "an array",
        Expr::Field(_) => "a field access",
        Expr::Reference(_) => "a reference",
        Expr::Macro(_) => "a macro call",
        Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) => "a loop used as a value",
        Expr::Return(_) | Expr::Break(_) | Expr::Continue(_) => {
            "`return`/`break`/`continue` inside an expression"
        }
        Expr::Assign(_) => "an assignment inside an expression",
        Expr::Let(_) => "`let` inside an expression",
        Expr::Unary(_) => "this unary operator",
        Expr::Range(_) => "a range",
        _ => "this kind of expression",
    }
}

/// The span of an expression's first token: what `Spanned::span` gives on stable Rust (spans do
/// not join there), found without turning the whole expression into tokens, which costs its
/// size (each token a call into rustc) and, on every node of a long chain, its square.
fn first_span(e: &Expr) -> Span {
    match e {
        Expr::Binary(b) if b.attrs.is_empty() => first_span(&b.left),
        Expr::MethodCall(m) if m.attrs.is_empty() => first_span(&m.receiver),
        Expr::Index(i) if i.attrs.is_empty() => first_span(&i.expr),
        Expr::Field(f) if f.attrs.is_empty() => first_span(&f.base),
        Expr::Call(c) if c.attrs.is_empty() => first_span(&c.func),
        Expr::Cast(c) if c.attrs.is_empty() => first_span(&c.expr),
        Expr::Paren(p) if p.attrs.is_empty() => p.paren_token.span.open(),
        Expr::Lit(l) if l.attrs.is_empty() => l.lit.span(),
        Expr::Unary(u) if u.attrs.is_empty() => match u.op {
            UnOp::Neg(t) => t.span,
            UnOp::Not(t) => t.span,
            UnOp::Deref(t) => t.span,
            _ => e.span(),
        },
        Expr::Path(p) if p.attrs.is_empty() && p.qself.is_none() => match &p.path.leading_colon {
            Some(c) => c.spans[0],
            None => p
                .path
                .segments
                .first()
                .map_or_else(|| e.span(), |s| s.ident.span()),
        },
        _ => e.span(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn lower_ok(item: syn::ItemFn) -> Func {
        let mut cx = Errors::default();
        let f = lower(&item, &Attr::default(), &mut cx).expect("lowers");
        if let Some(e) = cx.combined() {
            panic!("unexpected error: {e}");
        }
        f
    }

    fn lower_err(item: syn::ItemFn) -> String {
        let mut cx = Errors::default();
        let _ = lower(&item, &Attr::default(), &mut cx);
        cx.combined().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn shadowing_makes_new_variables() {
        // let x = x * 2.0; let x = x + 1.0; x
        let f = lower_ok(parse_quote! {
            fn g(x: f64) -> f64 {
                let x = x * 2.0;
                let x = x + 1.0;
                x
            }
        });
        let xs: Vec<_> = f.vars.iter().filter(|v| v.name == "x").collect();
        assert_eq!(xs.len(), 3, "the parameter and two shadows");
    }

    #[test]
    fn expressions_become_wengert_lists() {
        // x³(x + 3y): powi, mul, add, mul.
        let f = lower_ok(parse_quote! {
            fn f(x: f64, y: f64) -> f64 { x.powi(3) * (x + 3.0 * y) }
        });
        let [Stmt::Assign { temps, .. }] = &f.body.stmts[..] else {
            panic!("{:?}", f.body)
        };
        let ops: Vec<_> = temps
            .iter()
            .map(|n| match &n.rhs {
                Rhs::Op { op, .. } => op.name(),
                _ => "?",
            })
            .collect();
        assert_eq!(ops, ["powi", "mul", "add", "mul"]);
    }

    #[test]
    fn early_return_guards_the_rest() {
        // if x > 0 { return x; } x * 2.0  →  flag, if, guard flag, if { ret = x * 2 }
        let f = lower_ok(parse_quote! {
            fn g(x: f64) -> f64 {
                if x > 0.0 { return x; }
                x * 2.0
            }
        });
        let kinds: Vec<_> = f
            .body
            .stmts
            .iter()
            .map(|s| match s {
                Stmt::Set { .. } => "set",
                Stmt::If { .. } => "if",
                Stmt::Assign { .. } => "assign",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["set", "set", "if", "set", "if"]);
    }

    #[test]
    fn compound_assignment_reads_the_target() {
        let f = lower_ok(parse_quote! {
            fn g(x: f64) -> f64 { let mut s = 1.0; s *= x; s }
        });
        let Stmt::Assign { temps, .. } = &f.body.stmts[1] else {
            panic!()
        };
        assert!(
            matches!(&temps[0].rhs, Rhs::Op { op: Op::Mul, args, .. } if matches!(args[0], Operand::Var(_)))
        );
    }

    #[test]
    fn refusals_name_what_to_do() {
        let e = lower_err(parse_quote! {
            fn g(x: f64) -> f64 { let f = |t: f64| t * x; for v in x.iter() {} x.sin_cos().0 }
        });
        assert!(e.contains("closures are not supported"), "{e}");
        let e = lower_err(parse_quote! { fn g(x: f64) -> f64 { x.frobnicate() } });
        assert!(e.contains("`frobnicate` has no derivative rule"), "{e}");
        let e = lower_err(parse_quote! { fn g(x: &[f64]) -> f64 { for v in x.iter() { } 0.0 } });
        assert!(e.contains("loops iterate over an integer range"), "{e}");
        let e = lower_err(parse_quote! { fn g(n: usize) -> f64 { 1.0 } });
        assert!(e.contains("no parameter to differentiate"), "{e}");
        let e = lower_err(parse_quote! { fn g(x: f64) -> usize { 1 } });
        assert!(e.contains("must return `f64` or `f32`"), "{e}");
    }
}
