//! The table of differentiable operations: how each is written in the forward sweep and which
//! `ad_runtime::rules` function gives its partial derivatives. The formulas themselves live only
//! in the runtime; this table says whether they depend on values (`constant_partials`), which
//! decides what the reverse sweep must keep.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};

macro_rules! ops {
    ($( $variant:ident = $name:literal, $kind:ident, $constant:literal; )*) => {
        /// A differentiable operation.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Op { $( $variant, )* }

        impl Op {
            #[cfg(test)]
            pub const ALL: &'static [Op] = &[$( Op::$variant, )*];

            /// The rule's name in `ad_runtime::rules`, which is also the method's name.
            pub fn name(self) -> &'static str {
                match self { $( Op::$variant => $name, )* }
            }
            pub fn kind(self) -> Kind {
                match self { $( Op::$variant => Kind::$kind, )* }
            }
            /// True when the partial derivatives do not depend on any value.
            pub fn constant_partials(self) -> bool {
                match self { $( Op::$variant => $constant, )* }
            }
            /// The float method of this name, if it has a rule.
            pub fn method(name: &str) -> Option<Op> {
                match name {
                    $( $name if Kind::$kind.is_method() => Some(Op::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

/// How an operation is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `a + b` and friends.
    Infix,
    /// `-a`.
    Prefix,
    /// `a.sin()`.
    Unary,
    /// `a.powi(n)`: one float and an `i32`.
    PowI,
    /// `a.atan2(b)`.
    Binary,
    /// `a.mul_add(b, c)`.
    Ternary,
}

impl Kind {
    fn is_method(self) -> bool {
        !matches!(self, Kind::Infix | Kind::Prefix)
    }
    /// Number of float arguments, the receiver included.
    pub fn arity(self) -> usize {
        match self {
            Kind::Prefix | Kind::Unary | Kind::PowI => 1,
            Kind::Infix | Kind::Binary => 2,
            Kind::Ternary => 3,
        }
    }
}

ops! {
    Add = "add", Infix, true;
    Sub = "sub", Infix, true;
    Mul = "mul", Infix, false;
    Div = "div", Infix, false;
    Rem = "rem", Infix, false;
    Neg = "neg", Prefix, true;
    Sin = "sin", Unary, false;
    Cos = "cos", Unary, false;
    Tan = "tan", Unary, false;
    Asin = "asin", Unary, false;
    Acos = "acos", Unary, false;
    Atan = "atan", Unary, false;
    Sinh = "sinh", Unary, false;
    Cosh = "cosh", Unary, false;
    Tanh = "tanh", Unary, false;
    Asinh = "asinh", Unary, false;
    Acosh = "acosh", Unary, false;
    Atanh = "atanh", Unary, false;
    Exp = "exp", Unary, false;
    Exp2 = "exp2", Unary, false;
    ExpM1 = "exp_m1", Unary, false;
    Ln = "ln", Unary, false;
    Log2 = "log2", Unary, false;
    Log10 = "log10", Unary, false;
    Ln1p = "ln_1p", Unary, false;
    Sqrt = "sqrt", Unary, false;
    Cbrt = "cbrt", Unary, false;
    Recip = "recip", Unary, false;
    Abs = "abs", Unary, false;
    Signum = "signum", Unary, true;
    ToRadians = "to_radians", Unary, true;
    ToDegrees = "to_degrees", Unary, true;
    Floor = "floor", Unary, true;
    Ceil = "ceil", Unary, true;
    Round = "round", Unary, true;
    Trunc = "trunc", Unary, true;
    Fract = "fract", Unary, true;
    Powi = "powi", PowI, false;
    Atan2 = "atan2", Binary, false;
    Powf = "powf", Binary, false;
    Hypot = "hypot", Binary, false;
    Log = "log", Binary, false;
    Max = "max", Binary, false;
    Min = "min", Binary, false;
    Copysign = "copysign", Binary, false;
    MulAdd = "mul_add", Ternary, false;
    Clamp = "clamp", Ternary, false;
}

impl Op {
    /// Which inputs the runtime rule's formulas read: each float argument, then the result
    /// (its parameters not named with a leading `_`; `rules_read_what_the_table_says` checks
    /// the two agree). What a rule does not read is neither kept nor recomputed for it.
    pub fn reads(self) -> &'static [bool] {
        const R: bool = true;
        const N: bool = false;
        match self {
            Op::Add | Op::Sub => &[N, N, N],
            Op::Mul | Op::Atan2 | Op::Max | Op::Min => &[R, R, N],
            Op::Div => &[N, R, R],
            Op::Rem | Op::Powf | Op::Hypot | Op::Log => &[R, R, R],
            Op::Copysign => &[R, N, R],
            Op::MulAdd => &[R, R, N, N],
            Op::Clamp => &[R, R, R, N],
            Op::Neg
            | Op::Signum
            | Op::ToRadians
            | Op::ToDegrees
            | Op::Floor
            | Op::Ceil
            | Op::Round
            | Op::Trunc
            | Op::Fract => &[N, N],
            Op::Tan | Op::Exp | Op::Exp2 | Op::Sqrt | Op::Cbrt | Op::Recip => &[N, R],
            Op::Tanh | Op::ExpM1 => &[R, R],
            Op::Sin
            | Op::Cos
            | Op::Asin
            | Op::Acos
            | Op::Atan
            | Op::Sinh
            | Op::Cosh
            | Op::Asinh
            | Op::Acosh
            | Op::Atanh
            | Op::Ln
            | Op::Log2
            | Op::Log10
            | Op::Ln1p
            | Op::Abs
            | Op::Powi => &[R, N],
        }
    }

    /// Piecewise constant: the derivative is zero wherever it exists (the runtime's rule returns
    /// 0), so the result is inactive. No adjoint flows through it, which also keeps an infinite
    /// adjoint downstream (`x.floor().cbrt()` at 0) from turning into `inf · 0 = NaN`.
    pub fn piecewise_constant(self) -> bool {
        matches!(
            self,
            Op::Floor | Op::Ceil | Op::Round | Op::Trunc | Op::Signum
        )
    }

    /// The forward computation, written as the user would.
    /// Tokens carry `span`, the user's expression, so that rustc's errors point at it.
    pub fn forward(
        self,
        args: &[TokenStream],
        int_arg: Option<&TokenStream>,
        span: Span,
    ) -> TokenStream {
        let method = Ident::new(self.name(), span);
        match (self.kind(), args) {
            (Kind::Infix, [a, b]) => {
                let op = match self {
                    Op::Add => quote_spanned!(span=> +),
                    Op::Sub => quote_spanned!(span=> -),
                    Op::Mul => quote_spanned!(span=> *),
                    Op::Div => quote_spanned!(span=> /),
                    _ => quote_spanned!(span=> %),
                };
                quote!(#a #op #b)
            }
            (Kind::Prefix, [a]) => quote_spanned!(span=> -#a),
            (Kind::PowI, [a]) => quote_spanned!(span=> #a.#method(#int_arg)),
            (_, [a, rest @ ..]) => quote_spanned!(span=> #a.#method(#(#rest),*)),
            _ => quote!(),
        }
    }
}

impl Op {
    /// Operations that cost much more than a load and a store (transcendental functions): inside
    /// fused loops their results are kept on a tape for the reverse sweep instead of being
    /// evaluated again.
    pub fn expensive(self) -> bool {
        matches!(
            self.name(),
            "sin"
                | "cos"
                | "tan"
                | "asin"
                | "acos"
                | "atan"
                | "atan2"
                | "sinh"
                | "cosh"
                | "tanh"
                | "asinh"
                | "acosh"
                | "atanh"
                | "exp"
                | "exp2"
                | "exp_m1"
                | "ln"
                | "log"
                | "log2"
                | "log10"
                | "ln_1p"
                | "powf"
                | "cbrt"
                | "hypot"
        )
    }

    /// Operations whose partials call a transcendental function of the operand that the
    /// operation itself did not compute (`sin`'s is `cos x`): below a fused loop's top level the
    /// forward sweep computes the partials and keeps them for the reverse, where the user's
    /// `x.cos()` of the same `x` beside it makes them free (LLVM merges the two), while the
    /// reverse, in a block of its own, would call `cos` again.
    pub fn partials_expensive(self) -> bool {
        matches!(self.name(), "sin" | "cos" | "sinh" | "cosh")
    }
}

/// Which values the partials of an operation read, given which of its arguments are active:
/// one flag per argument, then one for the result. Only the partials of active arguments are
/// used, so a product with a constant (`0.5 * y`) reads nothing of `y`. Mirrors the inputs each
/// rule in `ad_runtime::rules` uses (documented there).
pub fn value_needs(op: Op, active: &[bool]) -> Vec<bool> {
    let n = active.len();
    let mut needs = vec![false; n + 1];
    if op.constant_partials() {
        return needs;
    }
    match op {
        // d(ab)/da = b, d(ab)/db = a.
        Op::Mul => {
            needs[0] = active[1];
            needs[1] = active[0];
        }
        // d(a/b)/da = 1/b, d(a/b)/db = -y/b.
        Op::Div => {
            needs[1] = true;
            needs[2] = active[1];
        }
        _ => needs.copy_from_slice(op.reads()),
    }
    needs
}

/// Float methods that return something other than a float: kept as inactive code.
pub fn is_inactive_float_method(name: &str) -> bool {
    matches!(
        name,
        "is_nan"
            | "is_infinite"
            | "is_finite"
            | "is_normal"
            | "is_subnormal"
            | "is_sign_positive"
            | "is_sign_negative"
            | "to_bits"
            | "total_cmp"
            | "partial_cmp"
            | "classify"
            | "to_string"
            | "to_le_bytes"
            | "to_be_bytes"
            | "to_ne_bytes"
    )
}

/// Float-typed constants reachable as `f64::NAME` or `f64::consts::NAME`.
pub fn is_float_const(name: &str) -> bool {
    matches!(
        name,
        "EPSILON"
            | "MAX"
            | "MIN"
            | "MIN_POSITIVE"
            | "INFINITY"
            | "NEG_INFINITY"
            | "NAN"
            | "PI"
            | "TAU"
            | "E"
            | "SQRT_2"
            | "LN_2"
            | "LN_10"
            | "LOG2_E"
            | "LOG2_10"
            | "LOG10_E"
            | "LOG10_2"
            | "FRAC_PI_2"
            | "FRAC_PI_3"
            | "FRAC_PI_4"
            | "FRAC_PI_6"
            | "FRAC_PI_8"
            | "FRAC_1_PI"
            | "FRAC_2_PI"
            | "FRAC_2_SQRT_PI"
            | "FRAC_1_SQRT_2"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Op::reads` against the runtime's rules: a parameter named without a leading `_` is read.
    #[test]
    fn rules_read_what_the_table_says() {
        let src = include_str!("../../ad-runtime/src/rules.rs");
        for op in Op::ALL {
            let head = format!("pub fn {}<T: Float>(", op.name());
            let at = src
                .find(&head)
                .unwrap_or_else(|| panic!("no rule for {op:?}"))
                + head.len();
            let params = &src[at..at + src[at..].find(')').unwrap()];
            let read: Vec<bool> = params
                .split(',')
                .map(str::trim)
                .filter(|p| p.ends_with(": T"))
                .map(|p| !p.starts_with('_'))
                .collect();
            assert_eq!(read.len(), op.kind().arity() + 1, "{op:?}: {params}");
            assert_eq!(op.reads(), read.as_slice(), "{op:?}: {params}");
        }
    }

    #[test]
    fn method_lookup_excludes_operators() {
        assert_eq!(Op::method("sin"), Some(Op::Sin));
        assert_eq!(Op::method("mul_add"), Some(Op::MulAdd));
        assert_eq!(Op::method("add"), None);
        assert_eq!(Op::method("neg"), None);
        assert_eq!(Op::method("sin_cos"), None);
    }

    #[test]
    fn forward_is_written_as_the_user_would() {
        let a = quote!(a);
        let b = quote!(b);
        assert_eq!(
            Op::Mul
                .forward(&[a.clone(), b.clone()], None, Span::call_site())
                .to_string(),
            "a * b"
        );
        assert_eq!(
            Op::Atan2
                .forward(&[a.clone(), b], None, Span::call_site())
                .to_string(),
            "a . atan2 (b)"
        );
        assert_eq!(
            Op::Powi
                .forward(&[a], Some(&quote!(3)), Span::call_site())
                .to_string(),
            "a . powi (3)"
        );
    }
}
