//! Shrinking: smaller variants of a program, for turning a failing program into a minimal
//! reproducer (the campaign runner keeps the smallest variant that still fails, and repeats).
//!
//! A variant removes a statement or a helper function, replaces an `if` by one of its arms,
//! replaces an expression by one of its operands or by a literal, or drops `wrt(..)`. Variants
//! that would not compile (a removed `let` still read later) are filtered by [`valid`], which
//! re-checks scopes the way the generator tracks them.

use crate::generator::ast::{Block, Cond, FExpr, Function, IExpr, Param, Place, Program, Stmt};
use crate::generator::generate::is_const;

/// Every valid one-step simplification of `p`, smallest first, without duplicates.
pub fn variants(p: &Program) -> Vec<Program> {
    let mut out: Vec<Program> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    seen.insert(format!("{p:?}"));
    let mut push = |mut q: Program| {
        for f in &mut q.functions {
            annotate_constants(&mut f.body);
        }
        if valid(&q) && seen.insert(format!("{q:?}")) {
            out.push(q);
        }
    };
    // Helper functions nobody calls.
    for k in 0..p.functions.len() - 1 {
        let name = &p.functions[k].name;
        if !p.functions.iter().any(|f| calls(&f.body, name)) {
            let mut q = p.clone();
            q.functions.remove(k);
            push(q);
        }
    }
    // Parameters (the validity check refuses the variant if the parameter is read).
    for k in 0..p.functions.len() {
        for j in 0..p.functions[k].params.len() {
            push(without_param(p, k, j));
        }
    }
    if p.entry().wrt.is_some() {
        let mut q = p.clone();
        q.functions.last_mut().expect("entry").wrt = None;
        push(q);
    }
    for edit in [edit_stmt, edit_expr] {
        let mut n = 0;
        loop {
            let mut any = false;
            for alt in 0..8 {
                let mut q = p.clone();
                match edit(&mut q, n, alt) {
                    Edit::NoSuchSite => break,
                    Edit::NoSuchAlternative => {
                        any = true;
                        break;
                    }
                    Edit::Done => {
                        any = true;
                        push(q);
                    }
                }
            }
            if !any {
                break;
            }
            n += 1;
        }
    }
    out.sort_by_key(size);
    out
}

/// `p` without parameter `j` of function `k`, and without that argument at its call sites.
fn without_param(p: &Program, k: usize, j: usize) -> Program {
    let mut q = p.clone();
    let f = &mut q.functions[k];
    let name = f.params.remove(j).name().to_string();
    if let Some(w) = &mut f.wrt {
        w.retain(|n| *n != name);
        if w.is_empty() {
            f.wrt = None;
        }
    }
    let callee = f.name.clone();
    for g in &mut q.functions[k + 1..] {
        map_exprs_in_block(&mut g.body, &mut |e| {
            if let FExpr::Call(n, args) = e {
                if *n == callee && j < args.len() {
                    args.remove(j);
                }
            }
        });
    }
    q
}

/// The input point of `to` taken from the input point `x` of `from`, parameter by parameter
/// (after a parameter was removed). `None` when a parameter of `to` is not in `from`.
pub fn remap_inputs(from: &Program, to: &Program, x: &[f64]) -> Option<Vec<f64>> {
    let mut segments = Vec::new();
    let mut at = 0;
    for p in &from.entry().params {
        let len = match p {
            Param::Scalar(_) => 1,
            Param::Slice(_, l) => *l,
        };
        segments.push((p.clone(), &x[at..at + len]));
        at += len;
    }
    let mut out = Vec::new();
    for p in &to.entry().params {
        let (_, seg) = segments.iter().find(|(q, _)| q == p)?;
        out.extend_from_slice(seg);
    }
    Some(out)
}

fn map_exprs_in_block(b: &mut Block, f: &mut dyn FnMut(&mut FExpr)) {
    for s in &mut b.stmts {
        match s {
            Stmt::Let { init: e, .. } | Stmt::Assign { value: e, .. } | Stmt::Return(e) => {
                map_expr(e, f)
            }
            Stmt::If { arms, els } => {
                for (c, b) in arms {
                    map_exprs_in_cond(c, f);
                    map_exprs_in_block(b, f);
                }
                if let Some(b) = els {
                    map_exprs_in_block(b, f);
                }
            }
            Stmt::For { body, .. } => map_exprs_in_block(body, f),
            Stmt::While { cond, body } => {
                map_exprs_in_cond(cond, f);
                map_exprs_in_block(body, f);
            }
            Stmt::LetIdx { .. }
            | Stmt::LetInt { .. }
            | Stmt::IncIdx { .. }
            | Stmt::SetIdx { .. }
            | Stmt::Break
            | Stmt::LetBuf { .. } => {}
        }
    }
    if let Some(t) = &mut b.tail {
        map_expr(t, f);
    }
}

fn map_exprs_in_cond(c: &mut Cond, f: &mut dyn FnMut(&mut FExpr)) {
    match c {
        Cond::Cmp(_, a, b) => {
            map_expr(a, f);
            map_expr(b, f);
        }
        Cond::ICmp(..) => {}
        Cond::And(a, b) | Cond::Or(a, b) => {
            map_exprs_in_cond(a, f);
            map_exprs_in_cond(b, f);
        }
        Cond::Not(a) => map_exprs_in_cond(a, f),
    }
}

fn map_expr(e: &mut FExpr, f: &mut dyn FnMut(&mut FExpr)) {
    f(e);
    match e {
        FExpr::Lit(_) | FExpr::Var(_) | FExpr::Index(..) | FExpr::Cast(_) => {}
        FExpr::Neg(x) | FExpr::Call1(_, x) | FExpr::Powi(x, _) => map_expr(x, f),
        FExpr::Bin(_, a, b) | FExpr::Call2(_, a, b) => {
            map_expr(a, f);
            map_expr(b, f);
        }
        FExpr::Call3(_, a, b, c) => {
            map_expr(a, f);
            map_expr(b, f);
            map_expr(c, f);
        }
        FExpr::Call(_, args) => args.iter_mut().for_each(|a| map_expr(a, f)),
        FExpr::If(arms, els) => {
            for (c, b) in arms {
                map_exprs_in_cond(c, f);
                map_exprs_in_block(b, f);
            }
            map_exprs_in_block(els, f);
        }
    }
}

/// `let t = 1.0;` becomes `let t: f64 = 1.0;` (a bare `{float}` has no methods).
fn annotate_constants(b: &mut Block) {
    for s in &mut b.stmts {
        match s {
            Stmt::Let { annotate, init, .. } if is_const(init) => *annotate = true,
            Stmt::If { arms, els } => {
                for (_, b) in arms {
                    annotate_constants(b);
                }
                if let Some(b) = els {
                    annotate_constants(b);
                }
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => annotate_constants(body),
            _ => {}
        }
    }
}

/// The number of statements, expression nodes and functions: what shrinking minimises.
pub fn size(p: &Program) -> usize {
    p.functions
        .iter()
        .map(|f| 1 + f.params.len() + usize::from(f.wrt.is_some()) + block_size(&f.body))
        .sum()
}

fn block_size(b: &Block) -> usize {
    b.stmts.iter().map(stmt_size).sum::<usize>() + b.tail.as_ref().map_or(0, expr_size)
}

fn stmt_size(s: &Stmt) -> usize {
    1 + match s {
        Stmt::Let { init, .. } => expr_size(init),
        Stmt::Assign { value, .. } => expr_size(value),
        Stmt::If { arms, els } => {
            arms.iter()
                .map(|(c, b)| cond_size(c) + block_size(b))
                .sum::<usize>()
                + els.as_ref().map_or(0, block_size)
        }
        Stmt::Return(e) => expr_size(e),
        Stmt::For { body, .. } => block_size(body),
        Stmt::While { cond, body } => cond_size(cond) + block_size(body),
        Stmt::LetIdx { .. }
        | Stmt::LetInt { .. }
        | Stmt::IncIdx { .. }
        | Stmt::SetIdx { .. }
        | Stmt::Break
        | Stmt::LetBuf { .. } => 0,
    }
}

fn cond_size(c: &Cond) -> usize {
    match c {
        Cond::Cmp(_, a, b) => 1 + expr_size(a) + expr_size(b),
        Cond::ICmp(..) => 1,
        Cond::And(a, b) | Cond::Or(a, b) => 1 + cond_size(a) + cond_size(b),
        Cond::Not(a) => 1 + cond_size(a),
    }
}

fn expr_size(e: &FExpr) -> usize {
    1 + match e {
        FExpr::Lit(_) | FExpr::Var(_) | FExpr::Index(..) | FExpr::Cast(_) => 0,
        FExpr::Neg(x) | FExpr::Call1(_, x) | FExpr::Powi(x, _) => expr_size(x),
        FExpr::Bin(_, a, b) | FExpr::Call2(_, a, b) => expr_size(a) + expr_size(b),
        FExpr::Call3(_, a, b, c) => expr_size(a) + expr_size(b) + expr_size(c),
        FExpr::Call(_, args) => args.iter().map(expr_size).sum(),
        FExpr::If(arms, els) => {
            arms.iter()
                .map(|(c, b)| cond_size(c) + block_size(b))
                .sum::<usize>()
                + block_size(els)
        }
    }
}

fn calls(b: &Block, name: &str) -> bool {
    let mut found = false;
    for_each_expr_in_block(b, &mut |e| {
        if let FExpr::Call(n, _) = e {
            found |= n == name;
        }
    });
    found
}

fn for_each_expr_in_block(b: &Block, f: &mut dyn FnMut(&FExpr)) {
    for s in &b.stmts {
        match s {
            Stmt::Let { init: e, .. } | Stmt::Assign { value: e, .. } | Stmt::Return(e) => {
                for_each_expr(e, f)
            }
            Stmt::If { arms, els } => {
                for (c, b) in arms {
                    for_each_expr_in_cond(c, f);
                    for_each_expr_in_block(b, f);
                }
                if let Some(b) = els {
                    for_each_expr_in_block(b, f);
                }
            }
            Stmt::For { body, .. } => for_each_expr_in_block(body, f),
            Stmt::While { cond, body } => {
                for_each_expr_in_cond(cond, f);
                for_each_expr_in_block(body, f);
            }
            Stmt::LetIdx { .. }
            | Stmt::LetInt { .. }
            | Stmt::IncIdx { .. }
            | Stmt::SetIdx { .. }
            | Stmt::Break
            | Stmt::LetBuf { .. } => {}
        }
    }
    if let Some(t) = &b.tail {
        for_each_expr(t, f);
    }
}

fn for_each_expr_in_cond(c: &Cond, f: &mut dyn FnMut(&FExpr)) {
    match c {
        Cond::Cmp(_, a, b) => {
            for_each_expr(a, f);
            for_each_expr(b, f);
        }
        Cond::ICmp(..) => {}
        Cond::And(a, b) | Cond::Or(a, b) => {
            for_each_expr_in_cond(a, f);
            for_each_expr_in_cond(b, f);
        }
        Cond::Not(a) => for_each_expr_in_cond(a, f),
    }
}

fn for_each_expr(e: &FExpr, f: &mut dyn FnMut(&FExpr)) {
    f(e);
    match e {
        FExpr::Lit(_) | FExpr::Var(_) | FExpr::Index(..) | FExpr::Cast(_) => {}
        FExpr::Neg(x) | FExpr::Call1(_, x) | FExpr::Powi(x, _) => for_each_expr(x, f),
        FExpr::Bin(_, a, b) | FExpr::Call2(_, a, b) => {
            for_each_expr(a, f);
            for_each_expr(b, f);
        }
        FExpr::Call3(_, a, b, c) => {
            for_each_expr(a, f);
            for_each_expr(b, f);
            for_each_expr(c, f);
        }
        FExpr::Call(_, args) => args.iter().for_each(|a| for_each_expr(a, f)),
        FExpr::If(arms, els) => {
            for (c, b) in arms {
                for_each_expr_in_cond(c, f);
                for_each_expr_in_block(b, f);
            }
            for_each_expr_in_block(els, f);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Edits at the n-th site, counted in a fixed pre-order.
// ---------------------------------------------------------------------------------------------

enum Edit {
    Done,
    /// The site exists but has fewer alternatives.
    NoSuchAlternative,
    NoSuchSite,
}

/// Replaces statement number `n` by its alternative number `alt`: 0 removes it; for an `if`,
/// the next ones splice in one arm's statements, or drop an arm.
fn edit_stmt(p: &mut Program, n: usize, alt: usize) -> Edit {
    let mut counter = 0;
    for f in &mut p.functions {
        if let Some(e) = edit_stmt_in_block(&mut f.body, &mut counter, n, alt) {
            return e;
        }
    }
    Edit::NoSuchSite
}

fn stmt_alternatives(s: &Stmt) -> Vec<Vec<Stmt>> {
    // A counter's increment keeps its `while` finite.
    if matches!(s, Stmt::IncIdx { .. }) {
        return vec![];
    }
    let mut alts = vec![vec![]];
    if let Stmt::If { arms, els } = s {
        for (_, b) in arms {
            alts.push(b.stmts.clone());
        }
        if let Some(b) = els {
            alts.push(b.stmts.clone());
            alts.push(vec![Stmt::If {
                arms: arms.clone(),
                els: None,
            }]);
        }
        if arms.len() > 1 {
            alts.push(vec![Stmt::If {
                arms: arms[..1].to_vec(),
                els: els.clone(),
            }]);
        }
    }
    alts
}

fn edit_stmt_in_block(b: &mut Block, counter: &mut usize, n: usize, alt: usize) -> Option<Edit> {
    let mut i = 0;
    while i < b.stmts.len() {
        if *counter == n {
            let alts = stmt_alternatives(&b.stmts[i]);
            if alt >= alts.len() {
                return Some(Edit::NoSuchAlternative);
            }
            b.stmts.splice(i..=i, alts[alt].clone());
            return Some(Edit::Done);
        }
        *counter += 1;
        let nested: Vec<&mut Block> = match &mut b.stmts[i] {
            Stmt::If { arms, els } => {
                let mut v: Vec<&mut Block> = arms.iter_mut().map(|(_, b)| b).collect();
                if let Some(e) = els {
                    v.push(e);
                }
                v
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => vec![body],
            _ => vec![],
        };
        for nb in nested {
            if let Some(e) = edit_stmt_in_block(nb, counter, n, alt) {
                return Some(e);
            }
        }
        i += 1;
    }
    None
}

/// Replaces expression number `n` by its alternative number `alt` (an operand, or a literal).
fn edit_expr(p: &mut Program, n: usize, alt: usize) -> Edit {
    let mut counter = 0;
    for f in &mut p.functions {
        if let Some(e) = exprs_in_block(&mut f.body, &mut counter, n, alt) {
            return e;
        }
    }
    Edit::NoSuchSite
}

fn expr_alternatives(e: &FExpr) -> Vec<FExpr> {
    let mut alts: Vec<FExpr> = match e {
        FExpr::Lit(_) | FExpr::Var(_) => vec![],
        FExpr::Index(..) | FExpr::Cast(_) => vec![FExpr::Lit(1.0)],
        FExpr::Neg(x) | FExpr::Call1(_, x) | FExpr::Powi(x, _) => vec![(**x).clone()],
        FExpr::Bin(_, a, b) | FExpr::Call2(_, a, b) => vec![(**a).clone(), (**b).clone()],
        FExpr::Call3(_, a, b, c) => vec![(**a).clone(), (**b).clone(), (**c).clone()],
        FExpr::Call(_, args) => args.clone(),
        FExpr::If(arms, els) => {
            let mut v: Vec<FExpr> = arms.iter().filter_map(|(_, b)| b.tail.clone()).collect();
            v.extend(els.tail.clone());
            if arms.len() > 1 {
                v.push(FExpr::If(arms[..1].to_vec(), els.clone()));
            }
            v
        }
    };
    if !matches!(e, FExpr::Lit(_)) {
        alts.push(FExpr::Lit(1.0));
    }
    alts
}

fn exprs_in_block(b: &mut Block, counter: &mut usize, n: usize, alt: usize) -> Option<Edit> {
    for s in &mut b.stmts {
        let r = match s {
            Stmt::Let { init: e, .. } | Stmt::Assign { value: e, .. } | Stmt::Return(e) => {
                expr_site(e, counter, n, alt)
            }
            Stmt::If { arms, els } => {
                let mut r = None;
                for (c, b) in arms.iter_mut() {
                    r = r
                        .or_else(|| cond_site(c, counter, n, alt))
                        .or_else(|| exprs_in_block(b, counter, n, alt));
                }
                if let Some(b) = els {
                    r = r.or_else(|| exprs_in_block(b, counter, n, alt));
                }
                r
            }
            Stmt::For { body, .. } => exprs_in_block(body, counter, n, alt),
            Stmt::While { cond, body } => {
                cond_site(cond, counter, n, alt).or_else(|| exprs_in_block(body, counter, n, alt))
            }
            Stmt::LetIdx { .. }
            | Stmt::LetInt { .. }
            | Stmt::IncIdx { .. }
            | Stmt::SetIdx { .. }
            | Stmt::Break
            | Stmt::LetBuf { .. } => None,
        };
        if r.is_some() {
            return r;
        }
    }
    match &mut b.tail {
        Some(t) => expr_site(t, counter, n, alt),
        None => None,
    }
}

fn cond_site(c: &mut Cond, counter: &mut usize, n: usize, alt: usize) -> Option<Edit> {
    if *counter == n {
        let alts: Vec<Cond> = match c {
            Cond::And(a, b) | Cond::Or(a, b) => vec![(**a).clone(), (**b).clone()],
            Cond::Not(a) => vec![(**a).clone()],
            _ => vec![],
        };
        return Some(match alts.get(alt) {
            Some(x) => {
                *c = x.clone();
                Edit::Done
            }
            None => Edit::NoSuchAlternative,
        });
    }
    *counter += 1;
    match c {
        Cond::Cmp(_, a, b) => {
            expr_site(a, counter, n, alt).or_else(|| expr_site(b, counter, n, alt))
        }
        Cond::ICmp(..) => None,
        Cond::And(a, b) | Cond::Or(a, b) => {
            cond_site(a, counter, n, alt).or_else(|| cond_site(b, counter, n, alt))
        }
        Cond::Not(a) => cond_site(a, counter, n, alt),
    }
}

fn expr_site(e: &mut FExpr, counter: &mut usize, n: usize, alt: usize) -> Option<Edit> {
    if *counter == n {
        let alts = expr_alternatives(e);
        return Some(match alts.get(alt) {
            Some(x) => {
                *e = x.clone();
                Edit::Done
            }
            None => Edit::NoSuchAlternative,
        });
    }
    *counter += 1;
    match e {
        FExpr::Lit(_) | FExpr::Var(_) | FExpr::Index(..) | FExpr::Cast(_) => None,
        FExpr::Neg(x) | FExpr::Call1(_, x) | FExpr::Powi(x, _) => expr_site(x, counter, n, alt),
        FExpr::Bin(_, a, b) | FExpr::Call2(_, a, b) => {
            expr_site(a, counter, n, alt).or_else(|| expr_site(b, counter, n, alt))
        }
        FExpr::Call3(_, a, b, c) => expr_site(a, counter, n, alt)
            .or_else(|| expr_site(b, counter, n, alt))
            .or_else(|| expr_site(c, counter, n, alt)),
        FExpr::Call(_, args) => {
            for a in args.iter_mut() {
                if let Some(r) = expr_site(a, counter, n, alt) {
                    return Some(r);
                }
            }
            None
        }
        FExpr::If(arms, els) => {
            for (c, b) in arms.iter_mut() {
                if let Some(r) =
                    cond_site(c, counter, n, alt).or_else(|| exprs_in_block(b, counter, n, alt))
                {
                    return Some(r);
                }
            }
            exprs_in_block(els, counter, n, alt)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validity: the scope rules the generator follows, re-checked after an edit.
// ---------------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct Env {
    /// Float variables: name and mutability, innermost last.
    floats: Vec<(String, bool)>,
    ints: Vec<String>,
    /// Arrays: name and mutability.
    arrs: Vec<(String, bool)>,
    /// Functions defined so far and their arity.
    fns: Vec<(String, usize)>,
    /// How many loops enclose the statement (a `break` needs one).
    loops: usize,
}

impl Env {
    fn float(&self, n: &str) -> Option<bool> {
        self.floats.iter().rev().find(|v| v.0 == n).map(|v| v.1)
    }
    fn arr(&self, n: &str) -> Option<bool> {
        self.arrs.iter().rev().find(|v| v.0 == n).map(|v| v.1)
    }
}

/// Whether `p` compiles by the rules the generator follows: every name read is in scope,
/// every assignment is to a mutable variable, no method is called on a bare `{float}`, every
/// function and `if` expression ends in a value, and slices keep their parameters.
pub fn valid(p: &Program) -> bool {
    let mut env = Env::default();
    for f in &p.functions {
        if !valid_fn(f, &env) {
            return false;
        }
        env.fns.push((f.name.clone(), f.params.len()));
    }
    true
}

fn valid_fn(f: &Function, outer: &Env) -> bool {
    let mut env = Env {
        fns: outer.fns.clone(),
        ..Env::default()
    };
    for p in &f.params {
        match p {
            Param::Scalar(n) => env.floats.push((n.clone(), false)),
            Param::Slice(n, _) => env.arrs.push((n.clone(), false)),
        }
    }
    if let Some(names) = &f.wrt {
        if names.is_empty() || !names.iter().all(|n| f.params.iter().any(|p| p.name() == n)) {
            return false;
        }
    }
    f.body.tail.is_some() && valid_block(&f.body, &mut env)
}

fn valid_block(b: &Block, env: &mut Env) -> bool {
    let saved = env.clone();
    let ok = b.stmts.iter().all(|s| valid_stmt(s, env))
        && b.tail.as_ref().is_none_or(|t| valid_expr(t, env));
    // Bindings end with the block; the functions list never changes inside one.
    *env = saved;
    ok
}

fn valid_stmt(s: &Stmt, env: &mut Env) -> bool {
    match s {
        Stmt::Let {
            name,
            mutable,
            annotate,
            init,
        } => {
            if !valid_expr(init, env) || (is_const(init) && !annotate) {
                return false;
            }
            env.floats.push((name.clone(), *mutable));
            true
        }
        Stmt::LetIdx { name, init } | Stmt::LetInt { name, init, .. } => {
            if !valid_iexpr(init, env) {
                return false;
            }
            env.ints.push(name.clone());
            true
        }
        Stmt::IncIdx { name } => env.ints.contains(name),
        Stmt::SetIdx { name, value } => env.ints.contains(name) && valid_iexpr(value, env),
        Stmt::Break => env.loops > 0,
        Stmt::LetBuf { name, vec, .. } => {
            if vec.as_ref().is_some_and(|n| !valid_iexpr(n, env)) {
                return false;
            }
            env.arrs.push((name.clone(), true));
            true
        }
        Stmt::Assign { place, value, .. } => {
            let place_ok = match place {
                Place::Var(n) => env.float(n) == Some(true),
                Place::Elem(a, i) => env.arr(a) == Some(true) && valid_iexpr(i, env),
            };
            place_ok && valid_expr(value, env)
        }
        Stmt::If { arms, els } => {
            arms.iter()
                .all(|(c, b)| valid_cond(c, env) && valid_block(b, env))
                && els.as_ref().is_none_or(|b| valid_block(b, env))
        }
        Stmt::Return(e) => valid_expr(e, env),
        Stmt::For {
            var,
            start,
            end,
            body,
            ..
        } => {
            if !valid_iexpr(start, env) || !valid_iexpr(end, env) {
                return false;
            }
            let mut inner = env.clone();
            inner.ints.push(var.clone());
            inner.loops += 1;
            valid_block(body, &mut inner)
        }
        Stmt::While { cond, body } => {
            let mut inner = env.clone();
            inner.loops += 1;
            valid_cond(cond, env) && valid_block(body, &mut inner)
        }
    }
}

fn valid_cond(c: &Cond, env: &Env) -> bool {
    match c {
        Cond::Cmp(_, a, b) => valid_expr(a, env) && valid_expr(b, env),
        Cond::ICmp(_, a, b) => valid_iexpr(a, env) && valid_iexpr(b, env),
        Cond::And(a, b) | Cond::Or(a, b) => valid_cond(a, env) && valid_cond(b, env),
        Cond::Not(a) => valid_cond(a, env),
    }
}

fn valid_iexpr(e: &IExpr, env: &Env) -> bool {
    match e {
        IExpr::Lit(_) => true,
        IExpr::Var(n) => env.ints.contains(n),
        IExpr::Len(a) => env.arr(a).is_some(),
        IExpr::Add(a, b)
        | IExpr::Sub(a, b)
        | IExpr::Mul(a, b)
        | IExpr::Div(a, b)
        | IExpr::Rem(a, b) => valid_iexpr(a, env) && valid_iexpr(b, env),
    }
}

fn valid_expr(e: &FExpr, env: &Env) -> bool {
    let receiver = |x: &FExpr| !is_const(x) && valid_expr(x, env);
    match e {
        FExpr::Lit(_) => true,
        FExpr::Var(n) => env.float(n).is_some(),
        FExpr::Index(a, i) => env.arr(a).is_some() && valid_iexpr(i, env),
        FExpr::Cast(i) => valid_iexpr(i, env),
        FExpr::Neg(x) => valid_expr(x, env),
        FExpr::Bin(_, a, b) => valid_expr(a, env) && valid_expr(b, env),
        FExpr::Call1(_, x) | FExpr::Powi(x, _) => receiver(x),
        FExpr::Call2(_, x, y) => receiver(x) && valid_expr(y, env),
        FExpr::Call3(_, x, a, b) => receiver(x) && valid_expr(a, env) && valid_expr(b, env),
        FExpr::Call(name, args) => {
            env.fns.iter().any(|(n, k)| n == name && *k == args.len())
                && args.iter().all(|a| valid_expr(a, env))
        }
        FExpr::If(arms, els) => {
            let mut env = env.clone();
            arms.iter()
                .all(|(c, b)| b.tail.is_some() && valid_cond(c, &env) && valid_block(b, &mut env))
                && els.tail.is_some()
                && valid_block(els, &mut env)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{generate, Features};

    #[test]
    fn generated_programs_are_valid_and_shrink() {
        let f = Features::preset("all").unwrap();
        for i in 0..12 {
            let p = generate::program(3, i, &f);
            assert!(valid(&p), "program {i} is not valid: {p:?}");
            let vs = variants(&p);
            assert!(!vs.is_empty() || size(&p) < 4, "program {i} has no variant");
            for v in vs.iter().take(20) {
                assert!(size(v) <= size(&p) + 1);
            }
        }
    }

    #[test]
    fn programs_with_fused_loops_are_valid() {
        let f = Features::preset("all").unwrap();
        for i in 0..300 {
            let p = generate::program(11, i, &f);
            assert!(
                valid(&p),
                "program {i} is not valid:\n{}",
                crate::generator::emit::source(&p)
            );
        }
    }

    #[test]
    fn a_let_that_is_read_later_is_not_removed() {
        let p = Program {
            functions: vec![Function {
                name: "f".into(),
                public: false,
                params: vec![Param::Scalar("x".into())],
                wrt: None,
                body: Block {
                    stmts: vec![Stmt::Let {
                        name: "a".into(),
                        mutable: false,
                        annotate: false,
                        init: FExpr::Call1(
                            crate::generator::ast::Fn1::Sin,
                            Box::new(FExpr::Var("x".into())),
                        ),
                    }],
                    tail: Some(FExpr::Var("a".into())),
                },
            }],
        };
        let vs = variants(&p);
        assert!(vs.iter().all(valid));
        // `a` replaced by 1.0 in the tail, after which `let a` can go; `x.sin()` by `x`.
        assert!(!vs.iter().any(|v| v.functions[0].body.stmts.is_empty()));
        assert!(vs
            .iter()
            .any(|v| v.functions[0].body.tail == Some(FExpr::Lit(1.0))));
    }
}
