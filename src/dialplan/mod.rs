//! The YAML dial plan: schema, validation with line/column, and pure routing.
