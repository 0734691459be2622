//! First-run errors: what a new user meets before anything works.
