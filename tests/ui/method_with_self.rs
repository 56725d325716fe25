use ad::gradient;

struct Model {
    w: f64,
}

impl Model {
    #[gradient]
    fn loss(&self, x: f64) -> f64 {
        self.w * x
    }
}

fn main() {}
