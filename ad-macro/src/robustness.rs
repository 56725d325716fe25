//! The macro never panics: mutated and random inputs all give an expansion or `compile_error!`.
