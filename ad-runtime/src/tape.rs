//! [`Tape`]: the stack of values recorded by a forward sweep for the reverse sweep.

use core::mem::size_of;
use std::any::{Any, TypeId};
use std::cell::RefCell;

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
/// A dropped tape hands its buffers of 4 KiB or more to a cache of its thread, and a tape that
/// must grow takes the smallest cached buffer with room enough before allocating one
/// ([`tape_cache_bytes`](crate::tape_cache_bytes)): calling the same `f_grad` again reuses the memory the last call's tapes
/// grew into, instead of the allocator returning it to the system and the next call faulting
/// every page in again (an LSTM's 1.8 MB of tape: a fifth of its time). The cache holds at
/// most 64 MiB per thread.
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
pub struct Tape<T: 'static> {
    stack: Vec<T>,
    /// What [`Tape::slots`] hands out, a stack of its own: `regions[..top]` holds values, and
    /// the rest is room already initialised, reused by the next `slots` without filling it.
    regions: Vec<T>,
    top: usize,
}

/// Tapes holding the same values compare equal, whatever room they keep.
impl<T: PartialEq + 'static> PartialEq for Tape<T> {
    fn eq(&self, other: &Self) -> bool {
        self.stack == other.stack && self.regions[..self.top] == other.regions[..other.top]
    }
}

impl<T: 'static> Tape<T> {
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
        if self.stack.capacity() - self.stack.len() < n {
            self.grow_stack(n, false);
        }
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
        if self.stack.capacity() - self.stack.len() < n {
            self.grow_stack(n, true);
        }
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
        if self.stack.len() == self.stack.capacity() {
            self.grow_stack(1, false);
        }
        self.stack.push(v);
    }

    /// Room for `n` more values on the stack: at least twice the capacity unless `exact`, from
    /// the thread's cache when it holds a buffer large enough.
    #[cold]
    #[inline(never)]
    fn grow_stack(&mut self, n: usize, exact: bool) {
        let len = self.stack.len();
        let need = len + n;
        let want = if exact {
            need
        } else {
            need.max(2 * self.stack.capacity()).max(4)
        };
        match take::<T>(need, want) {
            Some(mut buf) => {
                buf.clear();
                buf.append(&mut self.stack);
                give(std::mem::replace(&mut self.stack, buf));
            }
            None => self.stack.reserve_exact(want - len),
        }
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

impl<T: Copy + 'static> Tape<T> {
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
        self.reserve(values.len());
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

impl<T: Clone + Default + 'static> Tape<T> {
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
    ///
    /// A buffer taken from the thread's cache keeps the values it held: they are initialised,
    /// so it is not filled again.
    #[cold]
    #[inline(never)]
    fn grow_regions(&mut self, len: usize) {
        let cap = self.regions.capacity();
        if len > cap {
            let room = if cap == 0 { len } else { len.max(2 * cap) };
            match take::<T>(len, room) {
                Some(mut buf) => {
                    // The values in use move to the front; the cached ones after them stay.
                    let used = self.regions.len().min(buf.len());
                    buf.splice(..used, self.regions.drain(..)).for_each(drop);
                    give(std::mem::replace(&mut self.regions, buf));
                }
                None => self.regions.reserve_exact(room - self.regions.len()),
            }
        }
        let room = self.regions.capacity().max(len);
        if self.regions.len() < room {
            self.regions.resize(room, T::default());
        }
    }
}

impl<T: 'static> Tape<T> {
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

/// A dropped tape's buffers go to its thread's cache.
impl<T: 'static> Drop for Tape<T> {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.stack));
        give(std::mem::take(&mut self.regions));
    }
}

/// A slice of `len` copies of one value whose memory, at 4 KiB or more, comes from the thread's
/// tape cache and goes back to it when dropped: the adjoint of a local buffer, which an
/// `f_grad` allocates on every call.
///
/// Allocating it afresh (`vec![0.0; n]`) costs little by itself, but freeing it at the end of
/// the call can return the memory to the system, and the next call then faults every page in
/// again (a stencil through a local buffer of 100,000 values: twice the time of its
/// hand-written adjoint). Taken from the cache, it is filled and reused instead.
///
/// ```
/// use ad_runtime::Buffer;
///
/// let mut bar = Buffer::filled(0.0_f64, 10_000);
/// assert_eq!(bar.len(), 10_000);
/// bar[3] += 1.5;
/// let held = ad_runtime::tape_cache_bytes();
/// drop(bar);
/// assert_eq!(ad_runtime::tape_cache_bytes(), held + 80_000);
/// // The next buffer of that size takes it back, filled again.
/// let again = Buffer::filled(0.0_f64, 10_000);
/// assert_eq!(ad_runtime::tape_cache_bytes(), held);
/// assert!(again.iter().all(|&v| v == 0.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer<T: 'static> {
    buf: Vec<T>,
}

impl<T: Copy + 'static> Buffer<T> {
    /// `len` copies of `value`.
    #[inline]
    pub fn filled(value: T, len: usize) -> Self {
        if len.saturating_mul(size_of::<T>()) >= MIN_CACHED {
            if let Some(mut buf) = take::<T>(len, len) {
                buf.clear();
                buf.resize(len, value);
                return Buffer { buf };
            }
        }
        Buffer {
            buf: vec![value; len],
        }
    }

    /// Makes the buffer `len` long: as it is when it already is, else `len` copies of `value`.
    /// (The adjoint of a buffer declared in each iteration of a fused loop: the reverse of the
    /// declaration zeroes it at the end of every iteration, so only its length can be wrong.)
    #[inline]
    pub fn fit(&mut self, value: T, len: usize) {
        if self.buf.len() != len {
            self.buf.clear();
            self.buf.resize(len, value);
        }
    }
}

impl<T: 'static> core::ops::Deref for Buffer<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        &self.buf
    }
}

impl<T: 'static> core::ops::DerefMut for Buffer<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf
    }
}

/// A dropped buffer's memory goes to its thread's cache.
impl<T: 'static> Drop for Buffer<T> {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.buf));
    }
}

/// Buffers of dropped tapes, per thread, by type: [`Tape`]'s growth takes from here first.
struct Cache {
    entries: Vec<Entry>,
    bytes: usize,
    /// Emptied boxes of entries taken, refilled by the next buffers given (no allocation for
    /// the cache's own bookkeeping once a program's calls repeat).
    shells: Vec<Box<dyn Any>>,
}

struct Entry {
    ty: TypeId,
    capacity: usize,
    bytes: usize,
    buf: Box<dyn Any>,
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache {
            entries: Vec::new(),
            bytes: 0,
            shells: Vec::new(),
        })
    };
}

/// Buffers smaller than this are not cached: the allocator serves them well.
const MIN_CACHED: usize = 4 << 10;
/// What one thread's cache holds at most.
const MAX_CACHED: usize = 64 << 20;
const MAX_ENTRIES: usize = 64;

/// Bytes of tape buffers held by the calling thread's cache, ready for the next tapes that
/// grow.
///
/// ```
/// let mut tape = ad_runtime::Tape::<f64>::new();
/// tape.reserve_exact(10_000);
/// let held = tape.bytes();
/// let before = ad_runtime::tape_cache_bytes();
/// drop(tape);
/// assert_eq!(ad_runtime::tape_cache_bytes(), before + held);
/// // The next tape that grows takes it back.
/// let mut again = ad_runtime::Tape::<f64>::new();
/// again.reserve_exact(5_000);
/// assert_eq!(ad_runtime::tape_cache_bytes(), before);
/// assert_eq!(again.capacity(), 10_000);
/// ```
pub fn tape_cache_bytes() -> usize {
    CACHE
        .try_with(|c| c.try_borrow().map_or(0, |c| c.bytes))
        .unwrap_or(0)
}

/// Frees the buffers the calling thread's cache holds: the next tapes allocate again.
///
/// ```
/// let mut tape = ad_runtime::Tape::<f64>::new();
/// tape.reserve_exact(10_000);
/// drop(tape);
/// assert!(ad_runtime::tape_cache_bytes() >= 80_000);
/// ad_runtime::release_tape_cache();
/// assert_eq!(ad_runtime::tape_cache_bytes(), 0);
/// ```
pub fn release_tape_cache() {
    let taken = CACHE.try_with(|c| {
        c.try_borrow_mut().map_or_else(
            |_| Vec::new(),
            |mut c| {
                c.bytes = 0;
                c.shells.clear();
                std::mem::take(&mut c.entries)
            },
        )
    });
    // Freed outside the borrow.
    drop(taken);
}

/// The smallest cached `Vec<T>` with capacity `need` or more, preferring one of at least
/// `want`.
fn take<T: 'static>(need: usize, want: usize) -> Option<Vec<T>> {
    let ty = TypeId::of::<T>();
    CACHE
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let pick = |at_least: usize| {
                let fitting = c.entries.iter().enumerate();
                fitting
                    .filter(|(_, e)| e.ty == ty && e.capacity >= at_least)
                    .min_by_key(|(_, e)| e.capacity)
                    .map(|(k, _)| k)
            };
            let k = pick(want).or_else(|| pick(need))?;
            let mut e = c.entries.swap_remove(k);
            c.bytes -= e.bytes;
            let buf = std::mem::take(e.buf.downcast_mut::<Vec<T>>()?);
            if c.shells.len() < MAX_ENTRIES {
                c.shells.push(e.buf);
            }
            Some(buf)
        })
        .ok()
        .flatten()
}

/// Keeps `buf` for a later [`take`] if it is large enough and the cache has room; otherwise it
/// is freed. Values that own memory are dropped first; the others stay (initialised room).
fn give<T: 'static>(mut buf: Vec<T>) {
    let bytes = buf.capacity() * size_of::<T>();
    if bytes < MIN_CACHED {
        return;
    }
    if std::mem::needs_drop::<T>() {
        buf.clear();
    }
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if c.bytes + bytes <= MAX_CACHED && c.entries.len() < MAX_ENTRIES {
                let capacity = buf.capacity();
                let shell = c.shells.iter().rposition(|b| b.is::<Vec<T>>());
                let mut boxed = match shell {
                    Some(k) => c.shells.swap_remove(k),
                    None => Box::new(Vec::<T>::new()),
                };
                if let Some(slot) = boxed.downcast_mut::<Vec<T>>() {
                    *slot = std::mem::take(&mut buf);
                }
                c.bytes += bytes;
                c.entries.push(Entry {
                    ty: TypeId::of::<T>(),
                    capacity,
                    bytes,
                    buf: boxed,
                });
                // Room for every entry's shell now, so that taking them back never allocates.
                let room = c.entries.capacity();
                if c.shells.capacity() < room {
                    let more = room - c.shells.len();
                    c.shells.reserve_exact(more);
                }
            }
        }
    });
}

#[cold]
#[inline(never)]
#[track_caller]
fn underflow() -> ! {
    panic!("ad: tape underflow")
}
