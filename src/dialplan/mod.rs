//! The YAML dial plan: schema, validation with line/column, and pure routing.
//!
//! A dial plan is loaded once ([`DialPlan::load`] or
//! [`DialPlan::from_yaml_str`]), fully validated, and then consulted with
//! [`DialPlan::route`], a pure function of a [`RouteQuery`]. Every error —
//! YAML syntax, schema shape or a semantic rule — is a [`DialplanError`]
//! whose `Display` is `FILE:LINE:COL: message` followed by the source line
//! and a caret. The file format is documented in `dialplans/README.md`.
//!
//! Layout: `schema` (serde types mirroring the YAML), `validate`,
//! `validate_route`, `validate_rewrite`, `validate_media` and
//! `validate_trunk` (semantic rules),
//! `matcher` / `rewrite` / `e164` (compiled conditions and number
//! rewriting), `header_rules` (header-name patterns and the headers a B2BUA
//! never copies), `route` (first-match routing), `error` (positions and
//! snippets).

mod check;
mod e164;
mod error;
mod header_rules;
mod matcher;
mod rewrite;
mod route;
mod schema;
mod spanned;
mod types;
mod validate;
mod validate_media;
mod validate_rewrite;
mod validate_route;
mod validate_trunk;

#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_errors_b2bua;
#[cfg(test)]
mod tests_errors_routes;
#[cfg(test)]
mod tests_no_panic;
#[cfg(test)]
mod tests_plan;
#[cfg(test)]
mod tests_plan_b2bua;

use std::net::SocketAddr;
use std::path::Path;

pub use error::DialplanError;
pub use header_rules::{
    B2BUA_OWNED_HEADERS, header_long_name, header_pattern_matches, is_b2bua_owned,
};
pub use types::{
    Decision, DtmfMode, ForkMode, GatewayConfig, HeaderPolicy, HeaderRewrite, Listener,
    MediaConfig, MediaMode, RingbackTone, RouteMode, RouteQuery, Side, TimerConfig, TransportKind,
    Trunk, TrunkPolicy,
};

use error::{Diags, from_yaml_error, snippet};
use matcher::canonical_addr;
use route::CompiledRoute;

/// Largest dial-plan file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// A validated dial plan with compiled routes.
#[derive(Clone, Debug)]
pub struct DialPlan {
    /// Gateway-wide settings.
    pub gateway: GatewayConfig,
    /// Admin HTTP address, if configured.
    pub admin: Option<SocketAddr>,
    /// SIP timer values.
    pub timers: TimerConfig,
    /// Media relay address and port range (B2BUA `media: anchor`).
    pub media: MediaConfig,
    /// Listeners in file order (names unique).
    pub listeners: Vec<Listener>,
    /// Trunks in file order (names unique).
    pub trunks: Vec<Trunk>,
    /// Routes in evaluation order.
    routes: Vec<CompiledRoute>,
}

impl DialPlan {
    /// Parses and validates a dial plan. `file_name` is only used in error
    /// messages. Returns the first error in file order.
    pub fn from_yaml_str(src: &str, file_name: &str) -> Result<DialPlan, DialplanError> {
        Self::check_yaml_str(src, file_name).map_err(|mut errors| {
            if errors.is_empty() {
                // Unreachable by construction; keep a meaningful error anyway.
                errors.push(DialplanError::Invalid {
                    file: file_name.to_owned(),
                    line: 1,
                    col: 1,
                    message: "invalid dial plan".to_owned(),
                    snippet: snippet(src, 1, 1),
                });
            }
            errors.swap_remove(0)
        })
    }

    /// Like [`DialPlan::from_yaml_str`] but returns every semantic error,
    /// sorted by position (never empty on `Err`). A YAML or schema error
    /// stops parsing, so it is always reported alone.
    pub fn check_yaml_str(src: &str, file_name: &str) -> Result<DialPlan, Vec<DialplanError>> {
        if src.len() > MAX_FILE_BYTES {
            return Err(vec![DialplanError::Yaml {
                file: file_name.to_owned(),
                line: 0,
                col: 0,
                message: format!("file is larger than {MAX_FILE_BYTES} bytes"),
                snippet: String::new(),
            }]);
        }
        if src
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Err(vec![DialplanError::Yaml {
                file: file_name.to_owned(),
                line: 1,
                col: 1,
                message: "the file has no content; a dial plan needs at least \
                          `version: 1` and `listeners`"
                    .to_owned(),
                snippet: snippet(src, 1, 1),
            }]);
        }
        let file: schema::PlanFile =
            serde_saphyr::from_str(src).map_err(|e| vec![from_yaml_error(&e, src, file_name)])?;
        let mut diags = Diags::new(src, file_name);
        let plan = validate::build(&file, &mut diags);
        if diags.errors.is_empty() {
            Ok(plan)
        } else {
            Err(diags.into_sorted())
        }
    }

    /// Reads and validates the dial plan at `path` (the only file IO in this
    /// module; called by `main` and the runtime). Error messages name the
    /// file as `path` is displayed.
    pub fn load(path: &Path) -> Result<DialPlan, DialplanError> {
        let name = path.display().to_string();
        Self::from_yaml_str(&read_source(path)?, &name)
    }

    /// Like [`DialPlan::load`] but returns every semantic error.
    pub fn check_file(path: &Path) -> Result<DialPlan, Vec<DialplanError>> {
        let name = path.display().to_string();
        let src = read_source(path).map_err(|e| vec![e])?;
        Self::check_yaml_str(&src, &name)
    }

    /// Routes one request: the first route whose conditions all hold decides;
    /// [`Decision::NoRoute`] if none does. Pure.
    pub fn route(&self, q: &RouteQuery<'_>) -> Decision {
        route::route(&self.routes, q)
    }

    /// The trunk named `name`.
    pub fn trunk(&self, name: &str) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The first trunk (in file order) whose address is exactly `addr` (IP
    /// and port; IPv4-mapped IPv6 counts as IPv4). Used to tell which trunk
    /// a packet came from; a TCP connection from an ephemeral port matches
    /// no trunk.
    pub fn trunk_by_addr(&self, addr: SocketAddr) -> Option<&Trunk> {
        let addr = canonical_addr(addr);
        self.trunks
            .iter()
            .find(|t| canonical_addr(t.address) == addr)
    }

    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// Number of routes.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// Route names in evaluation order.
    pub fn route_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.routes.iter().map(|r| &*r.name)
    }
}

/// Reads `path` as UTF-8 text, refusing oversized files.
fn read_source(path: &Path) -> Result<String, DialplanError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| DialplanError::Io {
        file: name.clone(),
        message: e.to_string(),
    })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(DialplanError::Io {
            file: name,
            message: format!("file is larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or_default();
        let good = String::from_utf8_lossy(good);
        let line = good.matches('\n').count() + 1;
        let col = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        DialplanError::Yaml {
            file: name,
            line,
            col,
            message: "file is not valid UTF-8".to_owned(),
            snippet: snippet(&good, line, col),
        }
    })
}

/// The JSON Schema of the dial-plan file (what `callgate schema` prints).
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(schema::PlanFile)
}
