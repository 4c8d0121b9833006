//! Tests: whole-plan parsing and routing, and the shipped dial plans.
