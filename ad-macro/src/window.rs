//! Windows: memory a loop reads or writes at one element per iteration, sliced once before the
//! loop.
//!
//! `x[c * d + j]` in a loop over `j` is bounds-checked on every iteration: the compiler cannot
//! tell that `c * d + j` does not wrap around, so a check before the loop does not cover it.
//! Hand-written code iterates over `&x[c * d..][..d]` instead. Here, when every iteration of
//! the loop's forward accesses `x` at an index `e(j)` whose value steps by one with `j` (`a + j`
//! with `a` fixed during the loop, or a variable the body sets to such an expression first,
//! as `let l = c * m + (j - k - 1)`), the window `&x[e(lo)..e(lo) + (hi - lo)]` is taken
//! before the loop and the accesses inside read `window[j - lo]`, which the compiler sees in
//! bounds. The same holds in the loop's reverse (same `lo`, `hi` and `a`: the body does not
//! write them), and for the shadow of `x`, whose length is that of `x`.
//!
//! A window is taken of a slice parameter or of a local buffer whose length never changes
//! (declared only at the top level of the body). It is shared (`&`) when the loop does not
//! write that memory; otherwise (memory the body writes, or a shadow) it is exclusive
//! (`&mut`), and then only if every access to that memory in the loop's emitted code is the
//! one indexed access. The rewriting works on the emitted code of the loop's body: each
//! `x[e]` there becomes `window[j - lo]`.
//!
//! The window holds exactly the elements the forward loop accesses, so it is out of bounds
//! only where an access would be; it then panics before the loop instead of in it, as nothing
//! the function returns is observable before. A loop that may stop early (`break`) or that
//! steps by more than one visits fewer elements: it takes no window.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};

use crate::emit::Emitter;
use crate::ir::*;

/// A window that may be taken: of `buf` (or of its shadow), the start of the range.
struct Candidate {
    buf: VarId,
    start: TokenStream,
    exclusive: bool,
}

impl Emitter<'_> {
    /// The windows of the loop over `index` in `range` with body `body`, whose emitted code
    /// (forward, reverse, or both for a fused loop) is `code`: the declarations to put right
    /// before the loop, and the code with its accesses rewritten. `shadows`: whether the code
    /// accesses shadows (a reverse).
    pub fn windows(
        &self,
        body: &Block,
        index: VarId,
        range: &LoopRange,
        code: TokenStream,
        shadows: bool,
    ) -> (TokenStream, TokenStream) {
        self.windowed.borrow_mut().clear();
        if range
            .adapters
            .iter()
            .any(|a| matches!(a, Adapter::StepBy(_)))
        {
            return (quote!(), code);
        }
        // Most loops access no memory of `fixed_len` at their own statements: checked first,
        // as the rest walks the whole body (once per enclosing loop).
        let touches = body.stmts.iter().any(|s| match s {
            Stmt::Assign { place, temps, .. } => {
                matches!(place, Place::Elem { buf, .. } if self.fixed_len.contains(buf))
                    || temps.iter().any(
                        |n| matches!(&n.rhs, Rhs::Load { buf, .. } if self.fixed_len.contains(buf)),
                    )
            }
            _ => false,
        });
        if !touches {
            return (quote!(), code);
        }
        let mut written = BTreeSet::new();
        for s in &body.stmts {
            crate::analyse::writes(s, &mut written);
        }
        if written.contains(&range.start) {
            return (quote!(), code);
        }
        let i = self.ident(index);
        let name = i.to_string();
        let lo = self.ident(range.start);
        let hi = self.ident(range.end);
        let counters = counters_set_first(body);
        let declared = crate::emit::declared_in_block(body);
        // (name of the memory accessed, index code) -> window
        let mut cands: BTreeMap<(String, String), Candidate> = BTreeMap::new();
        for (p, s) in body.stmts.iter().enumerate() {
            let Stmt::Assign { place, temps, .. } = s else {
                continue;
            };
            let stores = match place {
                Place::Elem { buf, index } => Some((*buf, index)),
                Place::Var(_) => None,
            };
            let loads = temps.iter().filter_map(|n| match &n.rhs {
                Rhs::Load { buf, index } => Some((*buf, index)),
                _ => None,
            });
            for (buf, at) in loads.chain(stores) {
                // `x[i + k]` of a slice parameter needs no window: the check of its last
                // element before the loop covers the loop (and fused loops carry its adjoints
                // in registers). A local buffer's `z[i]` written in the loop has no such check.
                // Nor does its shadow, unless the stores of the adjoints carried in registers
                // (`bar.get_mut(i)`, `Emitter::carry_code`) go through one: they are checked
                // in every iteration otherwise (a scatter `w_bar[j] += ..` in the reverse of an
                // inner product stayed scalar).
                // (At `i + k`, `k > 0`, the store is `i.checked_add(k).and_then(..get_mut)`.)
                let shadow_only =
                    shadows && self.f.vars[buf].sort == Sort::Slice && self.facts.active[buf];
                let mut carried_at = None;
                let plain = match self.offset(at, index) {
                    None => false,
                    Some(0) if self.f.vars[buf].sort == Sort::Buffer => true,
                    Some(0) if shadow_only => true,
                    Some(k) if k > 0 && shadow_only => {
                        carried_at = Some(format!("{name}+{k}"));
                        true
                    }
                    Some(_) => continue,
                };
                // (Nor of memory the body declares: it is not there before the loop.)
                if !self.fixed_len.contains(&buf) || declared.contains(&buf) {
                    continue;
                }
                // The expression the index stands for: itself, or a counter's definition.
                let expr = match at.tokens.clone().into_iter().collect::<Vec<_>>().as_slice() {
                    [TokenTree::Ident(_)] if at.reads.len() == 1 => {
                        match counters.get(&at.reads[0]) {
                            Some((q, c)) if *q < p => c,
                            _ => at,
                        }
                    }
                    _ => at,
                };
                if expr
                    .reads
                    .iter()
                    .any(|r| *r != index && written.contains(r))
                    || !steps_by_one(&expr.tokens, &name)
                {
                    continue;
                }
                let start = crate::adjoint::replace_ident(expr.tokens.clone(), &name, &quote!(#lo));
                let key = carried_at.unwrap_or_else(|| at.tokens.to_string());
                let mut names = Vec::new();
                if !plain || written.contains(&buf) {
                    names.push((self.ident(buf).to_string(), written.contains(&buf)));
                }
                if shadows && self.facts.active[buf] {
                    names.push((self.bar(buf).to_string(), true));
                }
                for (b, exclusive) in names {
                    cands.entry((b, key.clone())).or_insert(Candidate {
                        buf,
                        start: start.clone(),
                        exclusive,
                    });
                }
            }
        }
        if cands.is_empty() {
            return (quote!(), code);
        }
        // Exclusive windows only where every access is the one indexed access.
        let exclusive: BTreeSet<String> = cands
            .iter()
            .filter(|(_, c)| c.exclusive)
            .map(|((b, _), _)| b.clone())
            .collect();
        let mut seen = HashMap::new();
        scan_accesses(&code, &exclusive, &mut seen);
        let mut made: BTreeMap<(String, String), Ident> = BTreeMap::new();
        for (key, c) in &cands {
            let ok = !c.exclusive
                || seen
                    .get(&key.0)
                    .is_some_and(|at: &Option<String>| at.as_deref() == Some(key.1.as_str()));
            if ok {
                let k = self.window_count.get();
                self.window_count.set(k + 1);
                made.insert(
                    key.clone(),
                    format_ident!("__w{}", k, span = Span::mixed_site()),
                );
            }
        }
        let used = std::cell::RefCell::new(BTreeSet::new());
        let code = replace_accesses(code, &|b: &str, at: &str| {
            let w = made.get(&(b.to_string(), at.to_string()))?;
            used.borrow_mut().insert((b.to_string(), at.to_string()));
            Some((w.clone(), quote!(#i - #lo)))
        });
        let used = used.into_inner();
        // (Made but unused: the loop's code does not access that memory at that index.)
        *self.windowed.borrow_mut() = made.keys().cloned().collect();
        let decls = made
            .iter()
            .filter(|(k, _)| used.contains(*k))
            .map(|(k, w)| {
                let c = &cands[k];
                let start = &c.start;
                let s = format_ident!("__s", span = Span::mixed_site());
                let mem = if self.ident(c.buf) == k.0 {
                    self.ident(c.buf)
                } else {
                    self.bar(c.buf)
                };
                if c.exclusive {
                    quote! {
                        let #w: &mut [_] = if #lo < #hi {
                            let #s = #start;
                            &mut #mem[#s..#s + (#hi - #lo)]
                        } else {
                            &mut []
                        };
                    }
                } else {
                    quote! {
                        let #w: &[_] = if #lo < #hi {
                            let #s = #start;
                            &#mem[#s..#s + (#hi - #lo)]
                        } else {
                            &[]
                        };
                    }
                }
            });
        (quote!(#(#decls)*), code)
    }
}

/// Integer variables the body sets once, by a top-level statement that comes before every
/// other statement of the body touching them: by variable, that statement's position and code.
fn counters_set_first(body: &Block) -> HashMap<VarId, (usize, &Code)> {
    let mut defs: HashMap<VarId, usize> = HashMap::new();
    for s in &body.stmts {
        s.walk(&mut |t| {
            if let Some(v) = crate::analyse::defined_var(t) {
                *defs.entry(v).or_default() += 1;
            }
        });
    }
    let mut touched = BTreeSet::new();
    let mut out = HashMap::new();
    for (p, s) in body.stmts.iter().enumerate() {
        if let Stmt::Set { dst, code, .. } = s {
            if defs.get(dst) == Some(&1) && !touched.contains(dst) {
                out.insert(*dst, (p, code));
            }
        }
        let mut r = Vec::new();
        crate::analyse::deep_reads(s, &mut r);
        touched.extend(r);
        crate::analyse::writes(s, &mut touched);
    }
    out
}

/// Whether `e` is `... + i + ...` with every other term free of `i` (terms split at the `+`
/// and binary `-` of its top level), where the term of `i` is `i` or a parenthesised
/// expression of the same kind: its value then steps by one with `i`. No operator of lower
/// precedence than `+` may appear at the top level.
pub(crate) fn steps_by_one(e: &TokenStream, name: &str) -> bool {
    let toks: Vec<TokenTree> = e.clone().into_iter().collect();
    // (sign, term)
    let mut terms: Vec<(bool, Vec<TokenTree>)> = vec![(true, Vec::new())];
    for (k, t) in toks.iter().enumerate() {
        if let TokenTree::Punct(p) = t {
            match p.as_char() {
                '+' | '-' => {
                    let Some((_, last)) = terms.last() else {
                        return false;
                    };
                    // A binary operator follows a term; a sign starts one (`a * -b`).
                    if last.is_empty() || ends_with_operator(last) {
                        if p.as_char() == '-' {
                            return false;
                        }
                    } else {
                        terms.push((p.as_char() == '+', Vec::new()));
                        continue;
                    }
                }
                '*' | '/' | '%' | ':' => {}
                '.' if !matches!(toks.get(k + 1), Some(TokenTree::Punct(q)) if q.as_char() == '.') =>
                    {}
                _ => return false,
            }
        }
        let Some((_, last)) = terms.last_mut() else {
            return false;
        };
        last.push(t.clone());
    }
    let mut with_i = terms.iter().filter(|(_, t)| mentions(t, name));
    let Some((positive, term)) = with_i.next() else {
        return false;
    };
    if with_i.next().is_some() || !positive || terms.iter().any(|(_, t)| t.is_empty()) {
        return false;
    }
    match term.as_slice() {
        [TokenTree::Ident(id)] => *id == name,
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::Parenthesis => {
            steps_by_one(&g.stream(), name)
        }
        _ => false,
    }
}

fn ends_with_operator(term: &[TokenTree]) -> bool {
    matches!(term.last(), Some(TokenTree::Punct(p)) if matches!(p.as_char(), '*' | '/' | '%'))
}

/// Whether `e` mentions the identifier `name`, inside groups too.
pub(crate) fn mentions_in(e: &TokenStream, name: &str) -> bool {
    mentions(&e.clone().into_iter().collect::<Vec<_>>(), name)
}

fn mentions(ts: &[TokenTree], name: &str) -> bool {
    ts.iter().any(|t| match t {
        TokenTree::Ident(id) => *id == name,
        TokenTree::Group(g) => mentions(&g.stream().into_iter().collect::<Vec<_>>(), name),
        _ => false,
    })
}

/// `name.get_mut(index)` at `toks[k..]`: the index's tokens.
fn get_mut_at(toks: &[TokenTree], k: usize) -> Option<TokenStream> {
    match toks.get(k + 1..k + 4)? {
        [TokenTree::Punct(dot), TokenTree::Ident(m), TokenTree::Group(g)]
            if dot.as_char() == '.'
                && *m == "get_mut"
                && g.delimiter() == Delimiter::Parenthesis =>
        {
            Some(g.stream())
        }
        _ => None,
    }
}

/// `i.checked_add(k).and_then(|__j| bar.get_mut(__j))` at `toks[k..]` (the store of an adjoint
/// carried in a register, `Emitter::carry_code`): `bar` and `"i+k"`.
fn checked_add_at(toks: &[TokenTree], at: usize) -> Option<(String, String)> {
    let [TokenTree::Ident(i), TokenTree::Punct(d1), TokenTree::Ident(ca), TokenTree::Group(k), TokenTree::Punct(d2), TokenTree::Ident(at_), TokenTree::Group(c)] =
        toks.get(at..at + 7)?
    else {
        return None;
    };
    if d1.as_char() != '.' || d2.as_char() != '.' || *ca != "checked_add" || *at_ != "and_then" {
        return None;
    }
    let k: Vec<TokenTree> = k.stream().into_iter().collect();
    let [k] = k.as_slice() else {
        return None;
    };
    let k = crate::emit::literal_usize(k)?;
    let c: Vec<TokenTree> = c.stream().into_iter().collect();
    match c.as_slice() {
        [TokenTree::Punct(p1), TokenTree::Ident(j), TokenTree::Punct(p2), TokenTree::Ident(bar), ..]
            if p1.as_char() == '|'
                && p2.as_char() == '|'
                && get_mut_at(&c, 3).is_some_and(|g| *j == g.to_string())
                && c.len() == 7 =>
        {
            Some((bar.to_string(), format!("{i}+{k}")))
        }
        _ => None,
    }
}

/// For each identifier of `names` in `tokens`: `Some(index)` if every occurrence is
/// `name[index]` or `name.get_mut(index)` with the same `index`, `None` if some occurrence is
/// anything else.
fn scan_accesses(
    tokens: &TokenStream,
    names: &BTreeSet<String>,
    seen: &mut HashMap<String, Option<String>>,
) {
    let toks: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let mut skip = 0;
    for (k, t) in toks.iter().enumerate() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if let Some((bar, at)) = checked_add_at(&toks, k).filter(|(b, _)| names.contains(b)) {
            let at = Some(at);
            let entry = seen.entry(bar).or_insert_with(|| at.clone());
            if *entry != at {
                *entry = None;
            }
            skip = 6;
            continue;
        }
        match t {
            TokenTree::Ident(id) => {
                let s = id.to_string();
                if !names.contains(&s) {
                    continue;
                }
                let at = match toks.get(k + 1) {
                    Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket => {
                        Some(g.stream().to_string())
                    }
                    _ => get_mut_at(&toks, k).map(|i| i.to_string()),
                };
                let entry = seen.entry(s).or_insert_with(|| at.clone());
                if *entry != at {
                    *entry = None;
                }
            }
            TokenTree::Group(g) => scan_accesses(&g.stream(), names, seen),
            _ => {}
        }
    }
}

/// What replaces `name[index]`: a window and the index into it.
type Through<'a> = &'a dyn Fn(&str, &str) -> Option<(Ident, TokenStream)>;

/// `tokens` with each `name[index]` (and `name.get_mut(index)`) for which `with(name, index)`
/// gives `(window, at)` replaced by `window[at]` (`window.get_mut(at)`), inside groups too.
fn replace_accesses(tokens: TokenStream, with: Through) -> TokenStream {
    let toks: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(toks.len());
    let mut k = 0;
    while k < toks.len() {
        if let Some((bar, at)) = checked_add_at(&toks, k) {
            if let Some((w, at)) = with(&bar, &at) {
                out.push(TokenTree::Ident(w));
                out.extend(quote!(.get_mut(#at)));
                k += 7;
                continue;
            }
        }
        if let (TokenTree::Ident(id), Some(i)) = (&toks[k], get_mut_at(&toks, k)) {
            if let Some((w, at)) = with(&id.to_string(), &i.to_string()) {
                out.push(TokenTree::Ident(w));
                out.extend(toks[k + 1..k + 3].iter().cloned());
                out.push(TokenTree::Group(Group::new(Delimiter::Parenthesis, at)));
                k += 4;
                continue;
            }
        }
        match (&toks[k], toks.get(k + 1)) {
            (TokenTree::Ident(id), Some(TokenTree::Group(g)))
                if g.delimiter() == Delimiter::Bracket =>
            {
                if let Some((w, at)) = with(&id.to_string(), &g.stream().to_string()) {
                    out.push(TokenTree::Ident(w));
                    out.push(TokenTree::Group(Group::new(Delimiter::Bracket, at)));
                    k += 2;
                    continue;
                }
                out.push(toks[k].clone());
            }
            (TokenTree::Group(g), _) => {
                let mut ng = Group::new(g.delimiter(), replace_accesses(g.stream(), with));
                ng.set_span(g.span());
                out.push(TokenTree::Group(ng));
            }
            (t, _) => out.push(t.clone()),
        }
        k += 1;
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(e: &str) -> bool {
        steps_by_one(&e.parse().unwrap(), "j")
    }

    #[test]
    fn indices_that_step_by_one() {
        for e in [
            "c * d + j",
            "j + c * d",
            "a + b + j",
            "a - b + j",
            "c * m + d + k * (2 * d - k - 1) / 2 + (j - k - 1)",
            "x.len() + j",
            "n as usize + j",
        ] {
            assert!(steps(e), "{e}");
        }
        for e in [
            "j",
            "a - j",
            "2 * j",
            "j * 2 + a",
            "a + j + j",
            "(j - 1) * 2",
            "a + (k - j)",
            "a << 1 + j",
            "a + j..b",
            "a * -j",
            "(a + j) % n",
            "f(j) + a",
        ] {
            // `j` alone steps by one, but needs no window (the check before the loop suffices):
            // `steps_by_one` accepts it; the caller skips it as an offset.
            if e == "j" {
                assert!(steps(e));
                continue;
            }
            assert!(!steps(e), "{e}");
        }
    }
}
