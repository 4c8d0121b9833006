//! Tests: every validation error with its exact position.
