//! Selection loops: a loop whose only float assignment copies an element into a variable,
//! under a branch (`if x[i] > m { m = x[i]; }`: the running maximum, minimum, or the value at
//! an argmax).
//!
//! Differentiated as written, such a loop records every iteration's decision, and the reverse
//! sweep walks all of them back to find the one element whose copy survived. But the loop's
//! result *is* that element: its adjoint goes to one place, known when the loop ends. So the
//! loop is rewritten to select with an inactive copy and to remember the position of the last
//! copy; afterwards the variable is set from that position, an ordinary indexed read:
//!
//! ```text
//! m_sel = m;  src = usize::MAX;
//! for i in .. { cond = x[i] > m_sel; if cond { m_sel = x[i]; src = i; } }
//! has = src != usize::MAX;
//! if has { m = x[src]; }
//! ```
//!
//! The forward values are the same bits (the same comparisons of the same values, and `m` ends
//! holding the same element). The loop no longer computes anything active, so its reverse
//! sweep and its recorded decisions are gone; what remains is one adjoint update,
//! `x̄[src] += m̄`, or none when no copy ran and `m` keeps its value from before the loop.
//!
//! The rewrite applies to a `for` loop (no early exit) whose body holds no `while`, buffer
//! declaration or forward-only statement, and exactly one assignment of a float: `v = b[e]`
//! for an active variable `v`, an element of a slice or buffer `b` (not written in the loop,
//! since nothing else in it is), with `e` not reading `v`. Every other read of `v` in the loop
//! is in the integer and boolean code (the comparisons), which reads the copy instead.
//!
//! It runs after [`crate::analyse::check_inactive_code`], because the copy is made by inactive
//! code that reads active values on purpose.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::emit::var_ident;
use crate::ir::*;

/// Rewrites every selection loop of `f` whose variable is `active`. Returns whether any was.
///
/// Leaves `f` untouched (statements stay where they are in memory, which the analysis' caches
/// rely on) when there is none.
pub fn rewrite(f: &mut Func, active: &[bool]) -> bool {
    let mut any = false;
    f.body
        .walk(&mut |s| any |= matches!(s, Stmt::For { .. }) && selection(f, active, s).is_some());
    if !any {
        return false;
    }
    let mut body = std::mem::take(&mut f.body);
    let changed = rewrite_block(f, active, &mut body);
    f.body = body;
    changed
}

fn rewrite_block(f: &mut Func, active: &[bool], b: &mut Block) -> bool {
    rewrite_statements(f, b, &mut |f, s| match selection(f, active, &s) {
        Some(sel) => Ok(lower_selection(f, s, sel)),
        None => Err(Box::new(s)),
    })
}

/// A statement's replacement, or the statement given back (boxed: statements are large).
pub(crate) type Rewrite<'a> = dyn FnMut(&mut Func, Stmt) -> Result<Vec<Stmt>, Box<Stmt>> + 'a;

/// Replaces each statement of `b`, at any depth, for which `rewrite` gives its replacement
/// (`Err` gives the statement back unchanged; its nested blocks are then visited). Returns
/// whether any was replaced. (Shared by the rewrites that run between the analyses:
/// selection loops here, `interchange.rs`.)
pub(crate) fn rewrite_statements(f: &mut Func, b: &mut Block, rewrite: &mut Rewrite) -> bool {
    let mut changed = false;
    let mut out = Vec::with_capacity(b.stmts.len());
    for s in std::mem::take(&mut b.stmts) {
        let mut s = match rewrite(f, s) {
            Ok(new) => {
                out.extend(new);
                changed = true;
                continue;
            }
            Err(s) => *s,
        };
        match &mut s {
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                changed |= rewrite_statements(f, then_branch, rewrite);
                changed |= rewrite_statements(f, else_branch, rewrite);
            }
            Stmt::For { body, .. } => changed |= rewrite_statements(f, body, rewrite),
            Stmt::While { cond, body, .. } => {
                changed |= rewrite_statements(f, cond, rewrite);
                changed |= rewrite_statements(f, body, rewrite);
            }
            _ => {}
        }
        out.push(s);
    }
    b.stmts = out;
    changed
}

/// What a selection loop selects: the variable and the memory it copies from.
struct Selection {
    var: VarId,
    buf: VarId,
}

/// Whether `s` is a selection loop (see the module's documentation).
fn selection(f: &Func, active: &[bool], s: &Stmt) -> Option<Selection> {
    let Stmt::For {
        body, exit: None, ..
    } = s
    else {
        return None;
    };
    let mut found: Option<Selection> = None;
    let mut ok = true;
    let mut assigns = 0;
    body.walk(&mut |t| match t {
        Stmt::Assign {
            place: Place::Var(v),
            temps,
            value: Operand::Var(val),
            ..
        } => {
            assigns += 1;
            match temps.as_slice() {
                [Node {
                    id,
                    rhs: Rhs::Load { buf, index },
                    ..
                }] if id == val && !index.reads.contains(v) => {
                    found = Some(Selection { var: *v, buf: *buf })
                }
                _ => ok = false,
            }
        }
        Stmt::Assign { .. } | Stmt::BufDecl { .. } | Stmt::While { .. } | Stmt::Plain(_) => {
            ok = false
        }
        Stmt::Set { .. } | Stmt::If { .. } | Stmt::For { .. } => {}
    });
    let sel = found.filter(|_| ok && assigns == 1)?;
    if f.vars[sel.var].sort != Sort::Float || !active[sel.var] {
        return None;
    }
    // `v` is read only by integer and boolean code (and by the copy being replaced); loops'
    // bounds are such code too.
    let mut other_reads = false;
    body.walk(&mut |t| {
        if let Stmt::Assign { temps, .. } = t {
            for n in temps {
                if let Rhs::Load { index, .. } = &n.rhs {
                    other_reads |= index.reads.contains(&sel.var);
                }
            }
        }
    });
    (!other_reads).then_some(sel)
}

pub(crate) fn new_var(f: &mut Func, name: &str, sort: Sort, role: Role) -> VarId {
    f.vars.push(Var {
        name: name.to_string(),
        user_ident: None,
        sort,
        role,
        array_len: None,
    });
    f.vars.len() - 1
}

pub(crate) fn new_site(f: &mut Func) -> SiteId {
    f.n_sites += 1;
    f.n_sites - 1
}

pub(crate) fn code(tokens: TokenStream, reads: Vec<VarId>, span: Span) -> Code {
    Code {
        tokens,
        reads,
        shape_only: vec![],
        span,
    }
}

/// `dst = <inactive float code>` as an assignment of one inactive node.
fn inactive_assign(f: &mut Func, dst: VarId, c: Code) -> Stmt {
    let span = c.span;
    let t = new_var(f, "_t", Sort::Float, Role::Temp);
    Stmt::Assign {
        site: new_site(f),
        place: Place::Var(dst),
        temps: vec![Node {
            id: t,
            rhs: Rhs::Expr(c),
            span,
        }],
        value: Operand::Var(t),
        span,
    }
}

/// The statements replacing the selection loop `s`.
fn lower_selection(f: &mut Func, mut s: Stmt, sel: Selection) -> Vec<Stmt> {
    let Selection { var, buf } = sel;
    let name = f.vars[var].name.clone();
    let copy = new_var(f, &format!("{name}_sel"), Sort::Float, Role::Hidden);
    let src = new_var(f, &format!("{name}_src"), Sort::Int, Role::Hidden);
    let has = new_var(f, &format!("{name}_has"), Sort::Bool, Role::Hidden);
    let var_i = var_ident(&f.vars[var], var);
    let copy_i = var_ident(&f.vars[copy], copy);
    let src_i = var_ident(&f.vars[src], src);
    let buf_i = var_ident(&f.vars[buf], buf);
    let span = Span::call_site();
    let none = quote!(::core::primitive::usize::MAX);

    let mut out = Vec::with_capacity(5);
    out.push(inactive_assign(
        f,
        copy,
        code(quote!(#var_i), vec![var], span),
    ));
    out.push(Stmt::Set {
        site: new_site(f),
        dst: src,
        code: code(none.clone(), vec![], span),
    });

    // The loop: the copy made into `copy`, its position into `src`; comparisons read `copy`.
    let mut last_span = span;
    let Stmt::For { body, .. } = &mut s else {
        unreachable!("selection() matched a for loop")
    };
    retarget(
        f,
        body,
        var,
        copy,
        src,
        &var_i,
        &copy_i,
        &buf_i,
        &mut last_span,
    );
    out.push(s);

    out.push(Stmt::Set {
        site: new_site(f),
        dst: has,
        code: code(quote!(#src_i != #none), vec![src], span),
    });
    let t = new_var(f, "_t", Sort::Float, Role::Temp);
    let read = Stmt::Assign {
        site: new_site(f),
        place: Place::Var(var),
        temps: vec![Node {
            id: t,
            rhs: Rhs::Load {
                buf,
                index: code(quote!(#src_i), vec![src], last_span),
            },
            span: last_span,
        }],
        value: Operand::Var(t),
        span: last_span,
    };
    out.push(Stmt::If {
        flag: has,
        then_branch: Block { stmts: vec![read] },
        else_branch: Block::default(),
    });
    out
}

/// In the loop body `b`: the copy `var = buf[e]` becomes `copy = buf[e]` (inactive) followed by
/// `src = e`; every integer or boolean code reading `var` reads `copy`.
#[allow(clippy::too_many_arguments)]
fn retarget(
    f: &mut Func,
    b: &mut Block,
    var: VarId,
    copy: VarId,
    src: VarId,
    var_i: &syn::Ident,
    copy_i: &syn::Ident,
    buf_i: &syn::Ident,
    last_span: &mut Span,
) {
    let mut out = Vec::with_capacity(b.stmts.len() + 1);
    for mut s in std::mem::take(&mut b.stmts) {
        match &mut s {
            Stmt::Assign {
                place: Place::Var(v),
                temps,
                span,
                ..
            } if *v == var => {
                let Some(Node {
                    rhs: Rhs::Load { buf, index },
                    ..
                }) = temps.first()
                else {
                    unreachable!("selection() matched a load")
                };
                let (buf, index) = (*buf, index.clone());
                *last_span = *span;
                let it = &index.tokens;
                let mut reads = index.reads.clone();
                reads.push(buf);
                let c = code(quote!(#buf_i[#it]), reads, index.span);
                out.push(inactive_assign(f, copy, c));
                out.push(Stmt::Set {
                    site: new_site(f),
                    dst: src,
                    code: index,
                });
                continue;
            }
            Stmt::Set { code, .. } if code.reads.contains(&var) => {
                code.tokens = crate::adjoint::replace_ident(
                    code.tokens.clone(),
                    &var_i.to_string(),
                    &quote!(#copy_i),
                );
                for r in &mut code.reads {
                    if *r == var {
                        *r = copy;
                    }
                }
            }
            Stmt::If {
                then_branch,
                else_branch,
                ..
            } => {
                for b in [then_branch, else_branch] {
                    retarget(f, b, var, copy, src, var_i, copy_i, buf_i, last_span);
                }
            }
            Stmt::For { body, .. } => {
                retarget(f, body, var, copy, src, var_i, copy_i, buf_i, last_span)
            }
            _ => {}
        }
        out.push(s);
    }
    b.stmts = out;
}

/// `from` renamed to `to` throughout `s`, nested statements included: every piece of code
/// (its tokens and its reads), operand, place and loop bound. (Shared by the rewrites that
/// move statements under another loop index: `interchange.rs`, `jam.rs`.)
pub(crate) fn rename(f: &Func, s: &mut Stmt, from: VarId, to: VarId) {
    let name = var_ident(&f.vars[from], from).to_string();
    let with = var_ident(&f.vars[to], to);
    let with = quote!(#with);
    let fix = |c: &mut Code| {
        if c.reads.contains(&from) || c.shape_only.contains(&from) {
            c.tokens = crate::adjoint::replace_ident(c.tokens.clone(), &name, &with);
            for r in c.reads.iter_mut().chain(c.shape_only.iter_mut()) {
                if *r == from {
                    *r = to;
                }
            }
        }
    };
    let var = |v: &mut VarId| {
        if *v == from {
            *v = to;
        }
    };
    rename_stmt(s, &fix, &var);
}

fn rename_stmt(s: &mut Stmt, fix: &dyn Fn(&mut Code), var: &dyn Fn(&mut VarId)) {
    match s {
        Stmt::Assign {
            place,
            temps,
            value,
            ..
        } => {
            match place {
                Place::Var(v) => var(v),
                Place::Elem { buf, index } => {
                    var(buf);
                    fix(index);
                }
            }
            if let Operand::Var(v) = value {
                var(v);
            }
            for n in temps {
                match &mut n.rhs {
                    Rhs::Op { args, int_arg, .. } => {
                        for o in args {
                            if let Operand::Var(v) = o {
                                var(v);
                            }
                        }
                        if let Some(c) = int_arg {
                            fix(c);
                        }
                    }
                    Rhs::Load { buf, index } => {
                        var(buf);
                        fix(index);
                    }
                    Rhs::Call { args, .. } => {
                        for a in args {
                            match a {
                                CallArg::Float(Operand::Var(v)) | CallArg::Slice(v) => var(v),
                                CallArg::Float(Operand::Const(_)) => {}
                                CallArg::Other(c) => fix(c),
                            }
                        }
                    }
                    Rhs::Expr(c) => fix(c),
                }
            }
        }
        Stmt::Set { dst, code, .. } => {
            var(dst);
            fix(code);
        }
        Stmt::BufDecl { buf, init, .. } => {
            var(buf);
            fix(init);
        }
        Stmt::If {
            flag,
            then_branch,
            else_branch,
        } => {
            var(flag);
            for t in then_branch.stmts.iter_mut().chain(&mut else_branch.stmts) {
                rename_stmt(t, fix, var);
            }
        }
        Stmt::For {
            index,
            range,
            body,
            exit,
            ..
        } => {
            var(index);
            var(&mut range.start);
            var(&mut range.end);
            for ad in &mut range.adapters {
                if let Adapter::StepBy(v) = ad {
                    var(v);
                }
            }
            if let Some(e) = exit {
                fix(&mut e.stop);
                var(&mut e.trips);
            }
            for t in &mut body.stmts {
                rename_stmt(t, fix, var);
            }
        }
        Stmt::While {
            cond,
            flag,
            body,
            trips,
            stop,
            ..
        } => {
            var(flag);
            var(trips);
            if let Some(c) = stop {
                fix(c);
            }
            for t in cond.stmts.iter_mut().chain(&mut body.stmts) {
                rename_stmt(t, fix, var);
            }
        }
        Stmt::Plain(c) => fix(c),
    }
}
