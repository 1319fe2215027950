//! Interactive questions for what was not given on the command line.
//!
//! Prompts (dialoguer, on stderr) only when stdin and stderr are both
//! terminals and `--no-input` was not given; otherwise the defaults are used
//! silently: one long method `Process`, ports 8080/50051, grpc host = crate name.
//! Every answer is validated with the same rules as the flags and re-asked
//! until valid.

use crate::names;
use crate::spec::{self, MethodKind, SpecInput};
use anyhow::{Context, Result};
use dialoguer::theme::ColorfulTheme;
use dialoguer::Input;
use std::io::IsTerminal;

/// Default method when none is given.
pub const DEFAULT_METHOD: &str = "Process";
/// Default HTTP (control) port.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Default gRPC (data) port.
pub const DEFAULT_GRPC_PORT: u16 = 50051;

/// What the user gave on the command line; `None`/empty means "not given".
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// Methods in order; empty when none was given.
    pub methods: Vec<(String, MethodKind)>,
    /// `--http-port`.
    pub http_port: Option<u16>,
    /// `--grpc-port`.
    pub grpc_port: Option<u16>,
    /// `--grpc-host`.
    pub grpc_host: Option<String>,
    /// `--proto-package`.
    pub proto_package: Option<String>,
    /// `--proto-service`.
    pub proto_service: Option<String>,
}

/// True when svcgen may ask questions: stdin and stderr are terminals and
/// `--no-input` was not given.
pub fn may_prompt(no_input: bool) -> bool {
    !no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Completes `given` into a [`SpecInput`]: asks for what is missing when
/// `interactive`, otherwise takes the defaults.
pub fn complete(crate_name: &str, given: Given, interactive: bool) -> Result<SpecInput> {
    let Given {
        methods,
        http_port,
        grpc_port,
        grpc_host,
        proto_package,
        proto_service,
    } = given;
    let service = proto_service
        .clone()
        .unwrap_or_else(|| names::default_proto_service(crate_name));
    let methods = match (methods.is_empty(), interactive) {
        (false, _) => methods,
        (true, false) => vec![(DEFAULT_METHOD.to_string(), MethodKind::Long)],
        (true, true) => ask_methods(&service)?,
    };
    let http_port = match (http_port, interactive) {
        (Some(p), _) => p,
        (None, false) => DEFAULT_HTTP_PORT,
        (None, true) => ask_port("HTTP (control) port", DEFAULT_HTTP_PORT, None)?,
    };
    let grpc_port = match (grpc_port, interactive) {
        (Some(p), _) => p,
        (None, false) => DEFAULT_GRPC_PORT,
        (None, true) => ask_port("gRPC (data) port", DEFAULT_GRPC_PORT, Some(http_port))?,
    };
    let grpc_host = match (grpc_host, interactive) {
        (Some(h), _) => Some(h),
        (None, false) => None,
        (None, true) => Some(ask_host(crate_name)?),
    };
    Ok(SpecInput {
        crate_name: crate_name.to_string(),
        methods,
        http_port,
        grpc_port,
        grpc_host,
        proto_package,
        proto_service,
        tags: None,
        upstreams: Vec::new(),
    })
}

/// Splits a comma-separated answer into method names (blank items ignored).
pub fn split_methods(answer: &str) -> Vec<String> {
    answer
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

fn ask_methods(service: &str) -> Result<Vec<(String, MethodKind)>> {
    let answer: String = Input::with_theme(&ColorfulTheme::default())
        .with_prompt("Methods (comma-separated, e.g. TrainModel, export_onnx)")
        .default(DEFAULT_METHOD.to_string())
        .validate_with(|input: &String| -> Result<(), String> {
            let list = split_methods(input);
            let derived = names::validate_methods(&list).map_err(|e| e.to_string())?;
            // The service may itself be invalid; that is reported later, once.
            if names::proto_service(service).is_ok() {
                names::check_service_against_methods(service, &derived)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .interact_text()
        .context("reading the methods")?;
    Ok(split_methods(&answer)
        .into_iter()
        .map(|m| (m, MethodKind::Long))
        .collect())
}

fn ask_port(prompt: &str, default: u16, http_port: Option<u16>) -> Result<u16> {
    Input::with_theme(&ColorfulTheme::default())
        .with_prompt(prompt)
        .default(default)
        .validate_with(|port: &u16| -> Result<(), String> {
            match http_port {
                Some(http) => spec::check_ports(http, *port).map_err(|e| e.to_string()),
                None => Ok(()),
            }
        })
        .interact_text()
        .with_context(|| format!("reading the {prompt}"))
}

fn ask_host(crate_name: &str) -> Result<String> {
    Input::with_theme(&ColorfulTheme::default())
        .with_prompt("gRPC host other services use to reach this one")
        .default(crate_name.to_string())
        .validate_with(|host: &String| -> Result<(), String> {
            names::grpc_host(host)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .interact_text()
        .context("reading the gRPC host")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_prompting() {
        let input = complete("demo-svc", Given::default(), false).unwrap();
        assert_eq!(
            input.methods,
            vec![("Process".to_string(), MethodKind::Long)]
        );
        assert_eq!((input.http_port, input.grpc_port), (8080, 50051));
        assert_eq!(input.grpc_host, None);
    }

    #[test]
    fn splits_answers() {
        assert_eq!(split_methods(" A, b_c ,,"), vec!["A", "b_c"]);
    }
}
