//! [`Tape`]: the stack of values recorded by a forward sweep for the reverse sweep.

use core::mem::size_of;

/// A stack of values the forward sweep of a loop records and the reverse sweep pops back.
///
/// Only values that the forward sweep overwrites and the reverse sweep still needs are taped
/// (loop-carried nonlinear state, overwritten array elements, branch decisions inside loops);
/// everything else is recomputed. The reverse sweep pops in exactly the opposite order of the
/// pushes, so popping from an empty tape means the generated code is wrong: it panics with
/// `"ad: tape underflow"`.
///
/// `Tape<T>` is a thin wrapper around a `Vec<T>`; size it once with [`Tape::with_capacity`] when
/// the number of pushes is known (a loop's trip count) so the forward sweep never reallocates.
/// Loops nested in other loops write their values in place instead ([`Tape::slots`]), into a
/// second buffer reused from one entry of the loop to the next.
///
/// ```
/// use ad_runtime::Tape;
///
/// // Forward sweep of x ← r·x·(1 − x), recording each overwritten x.
/// let (r, steps) = (3.5_f64, 4);
/// let mut tape = Tape::with_capacity(steps);
/// let mut x = 0.3;
/// for _ in 0..steps {
///     tape.push(x);
///     x = r * x * (1.0 - x);
/// }
/// // Reverse sweep: pop the iterates back in reverse order.
/// let mut x_bar = 1.0;
/// for _ in 0..steps {
///     let x_old = tape.pop();
///     x_bar *= r * (1.0 - 2.0 * x_old);
/// }
/// assert!(tape.is_empty());
/// # let _ = x_bar;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Tape<T> {
    stack: Vec<T>,
    /// What [`Tape::slots`] hands out, a stack of its own: `regions[..top]` holds values, and
    /// the rest is room already initialised, reused by the next `slots` without filling it.
    regions: Vec<T>,
    top: usize,
}

/// Tapes holding the same values compare equal, whatever room they keep.
impl<T: PartialEq> PartialEq for Tape<T> {
    fn eq(&self, other: &Self) -> bool {
        self.stack == other.stack && self.regions[..self.top] == other.regions[..other.top]
    }
}

impl<T> Tape<T> {
    /// An empty tape; does not allocate.
    ///
    /// ```
    /// let tape = ad_runtime::Tape::<f64>::new();
    /// assert!(tape.is_empty());
    /// assert_eq!(tape.capacity(), 0);
    /// ```
    #[inline]
    pub const fn new() -> Self {
        Tape {
            stack: Vec::new(),
            regions: Vec::new(),
            top: 0,
        }
    }

    /// An empty tape with room for at least `n` values before it reallocates.
    ///
    /// ```
    /// let tape = ad_runtime::Tape::<f64>::with_capacity(100);
    /// assert!(tape.capacity() >= 100);
    /// assert_eq!(tape.len(), 0);
    /// ```
    #[inline]
    pub fn with_capacity(n: usize) -> Self {
        Tape {
            stack: Vec::with_capacity(n),
            regions: Vec::new(),
            top: 0,
        }
    }

    /// Makes room for at least `n` more values.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::<f32>::new();
    /// tape.push(1.0);
    /// tape.reserve(10);
    /// assert!(tape.capacity() >= 11);
    /// ```
    #[inline]
    pub fn reserve(&mut self, n: usize) {
        self.stack.reserve(n);
    }

    /// Makes room for exactly `n` more values when the tape must grow: a loop whose trip count
    /// is known sizes its tape once, to the number of values it will record.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::<f64>::new();
    /// tape.reserve_exact(3);
    /// assert_eq!(tape.capacity(), 3);
    /// ```
    #[inline]
    pub fn reserve_exact(&mut self, n: usize) {
        self.stack.reserve_exact(n);
    }

    /// Records `v` on top of the tape.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::new();
    /// tape.push(2.5_f64);
    /// assert_eq!(tape.len(), 1);
    /// ```
    #[inline(always)]
    pub fn push(&mut self, v: T) {
        self.stack.push(v);
    }

    /// Removes and returns the most recently pushed value.
    ///
    /// # Panics
    ///
    /// With the message `"ad: tape underflow"` if the tape is empty. Generated code pops exactly
    /// what it pushed, so this signals a bug in the generated code, not in the user's.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::new();
    /// tape.push(1.0_f64);
    /// tape.push(2.0);
    /// assert_eq!(tape.pop(), 2.0);
    /// assert_eq!(tape.pop(), 1.0);
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn pop(&mut self) -> T {
        match self.stack.pop() {
            Some(v) => v,
            None => underflow(),
        }
    }

    /// Number of values currently on the tape.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::new();
    /// tape.extend_from_slice(&[1.0_f64, 2.0, 3.0]);
    /// assert_eq!(tape.len(), 3);
    /// ```
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.stack.len() + self.top
    }

    /// Whether the tape holds no values.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::new();
    /// assert!(tape.is_empty());
    /// tape.push(true);
    /// assert!(!tape.is_empty());
    /// ```
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.stack.is_empty() && self.top == 0
    }

    /// Removes every value, keeping the allocation.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::with_capacity(8);
    /// tape.extend_from_slice(&[1.0_f64, 2.0]);
    /// tape.clear();
    /// assert!(tape.is_empty());
    /// assert!(tape.capacity() >= 8);
    /// ```
    #[inline]
    pub fn clear(&mut self) {
        self.stack.clear();
        self.top = 0;
    }

    /// Number of values the tape can hold without reallocating.
    ///
    /// The buffer never shrinks, so after a sweep this is at least the tape's peak length.
    ///
    /// ```
    /// let tape = ad_runtime::Tape::<f64>::with_capacity(16);
    /// assert!(tape.capacity() >= 16);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.stack.capacity() + self.regions.capacity()
    }

    /// Heap memory held by the tape, in bytes: `capacity() * size_of::<T>()`.
    ///
    /// Since the buffer never shrinks, this reports the peak memory a sweep used.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::<f64>::with_capacity(4);
    /// assert_eq!(tape.bytes(), tape.capacity() * 8);
    /// ```
    #[inline]
    pub fn bytes(&self) -> usize {
        self.capacity() * size_of::<T>()
    }
}

impl<T: Copy> Tape<T> {
    /// Pushes every value of `values`, in order (so `values[len - 1]` ends on top).
    ///
    /// The inverse is [`Tape::pop_into`].
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::new();
    /// tape.extend_from_slice(&[1.0_f64, 2.0, 3.0]);
    /// assert_eq!(tape.pop(), 3.0);
    /// ```
    #[inline]
    pub fn extend_from_slice(&mut self, values: &[T]) {
        self.stack.extend_from_slice(values);
    }

    /// Pops the top `dst.len()` values into `dst`, in the order they were pushed: the inverse of
    /// [`Tape::extend_from_slice`] (saving and restoring a whole array).
    ///
    /// # Panics
    ///
    /// With the message `"ad: tape underflow"` if the tape holds fewer than `dst.len()` values;
    /// the tape is then left unchanged.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::new();
    /// let mut state = [1.0_f64, 2.0, 3.0];
    /// tape.extend_from_slice(&state);
    /// state = [0.0; 3]; // overwritten by the forward sweep
    /// tape.pop_into(&mut state);
    /// assert_eq!(state, [1.0, 2.0, 3.0]);
    /// assert!(tape.is_empty());
    /// ```
    #[inline]
    #[track_caller]
    pub fn pop_into(&mut self, dst: &mut [T]) {
        let Some(start) = self.stack.len().checked_sub(dst.len()) else {
            underflow()
        };
        dst.copy_from_slice(&self.stack[start..]);
        self.stack.truncate(start);
    }
}

impl<T: Clone + Default> Tape<T> {
    /// Room for `n` values, returned to be written in place: a loop that records `k` values per
    /// iteration writes iteration `t`'s `c`-th value at `t * k + c` instead of pushing it (no
    /// capacity check and no length stored per value). The reverse sweep reads them back with
    /// [`Tape::top`] and releases them with [`Tape::drop_top`].
    ///
    /// The room comes from a stack of its own, separate from [`Tape::push`]'s (each save of
    /// generated code is always pushed or always written into slots, so both stay in order):
    /// room released by `drop_top` is handed out again without being filled again, so a loop
    /// entered many times (inside another loop) fills its slots once.
    ///
    /// ```
    /// let mut tape = ad_runtime::Tape::new();
    /// tape.push(1.0_f64);
    /// let slots = tape.slots(3);
    /// for (t, s) in slots.iter_mut().enumerate() {
    ///     *s = t as f64 + 2.0;
    /// }
    /// assert_eq!(tape.len(), 4);
    /// assert_eq!(tape.top(2), &[3.0, 4.0]);
    /// tape.drop_top(3);
    /// assert_eq!(tape.pop(), 1.0);
    /// ```
    #[inline]
    pub fn slots(&mut self, n: usize) -> &mut [T] {
        let base = self.top;
        let end = base + n;
        if self.regions.len() < end {
            self.grow_regions(end);
        }
        self.top = end;
        &mut self.regions[base..end]
    }

    /// Room for `len` values: exactly `len` the first time (a loop entered once, at the top
    /// level, records exactly what it needs: the logistic map's `steps` values, not `Vec`'s
    /// rounding up to 4), at least twice the capacity after that (amortised, for loops nested
    /// in loops whose entries need more and more: each value is copied O(1) times). All the
    /// room is initialised at once, so the entries that follow a growth find theirs ready.
    #[cold]
    #[inline(never)]
    fn grow_regions(&mut self, len: usize) {
        let cap = self.regions.capacity();
        if len > cap {
            let room = if cap == 0 { len } else { len.max(2 * cap) };
            self.regions.reserve_exact(room - self.regions.len());
        }
        let room = self.regions.capacity().max(len);
        self.regions.resize(room, T::default());
    }
}

impl<T> Tape<T> {
    /// The last `n` values written through [`Tape::slots`] and not released, oldest first.
    ///
    /// # Panics
    ///
    /// With the message `"ad: tape underflow"` if fewer than `n` are held.
    #[inline]
    #[track_caller]
    pub fn top(&self, n: usize) -> &[T] {
        match self.top.checked_sub(n) {
            Some(base) => &self.regions[base..self.top],
            None => underflow(),
        }
    }

    /// Releases the last `n` values written through [`Tape::slots`].
    ///
    /// # Panics
    ///
    /// With the message `"ad: tape underflow"` if fewer than `n` are held.
    #[inline]
    #[track_caller]
    pub fn drop_top(&mut self, n: usize) {
        match self.top.checked_sub(n) {
            Some(base) => self.top = base,
            None => underflow(),
        }
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn underflow() -> ! {
    panic!("ad: tape underflow")
}
