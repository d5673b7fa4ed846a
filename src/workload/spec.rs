//! Model definitions as files: the built-in presets, user model files, and a scenario's
//! `[model]` table (a preset with named overrides, or an inline definition).

use super::model::{Model, ModelFile};
use crate::error::{nearest, parse_toml, Error, Problem, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    schema_version: u32,
    family: String,
    models: Vec<ModelFile>,
}

const PRESETS: [(&str, &str); 9] = [
    ("gpt.toml", include_str!("presets/gpt.toml")),
    ("megatron.toml", include_str!("presets/megatron.toml")),
    ("llama.toml", include_str!("presets/llama.toml")),
    ("bloom.toml", include_str!("presets/bloom.toml")),
    ("nemotron.toml", include_str!("presets/nemotron.toml")),
    ("grok.toml", include_str!("presets/grok.toml")),
    ("mpt.toml", include_str!("presets/mpt.toml")),
    ("mixtral.toml", include_str!("presets/mixtral.toml")),
    ("deepseek.toml", include_str!("presets/deepseek.toml")),
];

/// Parse a list of `[[models]]` from TOML text (a preset or user file).
///
/// # Errors
/// Parse errors and every invalid field, naming `file` and the key.
pub fn parse_models(file: &str, text: &str) -> Result<Vec<Model>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct UserFile {
        schema_version: Option<u32>,
        family: Option<String>,
        models: Vec<ModelFile>,
    }
    let f: UserFile = parse_toml(file, text)?;
    let _ = (f.schema_version, f.family);
    validate_models(file, f.models)
}

pub(crate) fn validate_models(file: &str, models: Vec<ModelFile>) -> Result<Vec<Model>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for m in models {
        let at = format!("models[{}]", m.id);
        if out.iter().any(|o: &Model| o.id == m.id) {
            problems.push(Problem::new(
                format!("{at}.id"),
                format!("duplicate model id `{}`", m.id),
            ));
        }
        match Model::from_file(m, &at) {
            Ok(m) => out.push(m),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid {
            file: file.to_string(),
            problems,
        })
    }
}

/// The built-in model presets.
///
/// # Errors
/// Only if an embedded preset is broken, which the tests rule out.
pub fn presets() -> Result<Vec<Model>> {
    let mut all: Vec<Model> = Vec::new();
    for (name, text) in PRESETS {
        let file = format!("<built-in>/{name}");
        let f: PresetFile = parse_toml(&file, text)?;
        let stem = name.trim_end_matches(".toml");
        if f.family != stem || f.schema_version != 1 {
            return Err(Error::Invalid {
                file,
                problems: vec![Problem::new(
                    "family",
                    format!("must equal `{stem}` with schema_version 1"),
                )],
            });
        }
        for m in validate_models(&file, f.models)? {
            if all.iter().any(|o| o.id == m.id) {
                return Err(Error::Invalid {
                    file,
                    problems: vec![Problem::new(
                        format!("models[{}].id", m.id),
                        "duplicate preset id",
                    )],
                });
            }
            all.push(m);
        }
    }
    Ok(all)
}

/// A preset by id.
///
/// # Errors
/// [`Error::UnknownId`] listing the presets.
pub fn preset(id: &str) -> Result<Model> {
    let all = presets()?;
    match all.iter().position(|m| m.id == id) {
        Some(i) => Ok(all[i].clone()),
        None => Err(Error::unknown(
            "model",
            id,
            all.iter().map(|m| m.id.as_str()),
        )),
    }
}

/// The keys of a model definition (what an override or inline `[model]` may set).
pub const MODEL_KEYS: [&str; 17] = [
    "id",
    "name",
    "source",
    "layers",
    "d_model",
    "heads",
    "kv_heads",
    "head_dim",
    "ffn",
    "mlp",
    "vocab",
    "seq_len",
    "tied_embeddings",
    "dropout",
    "moe",
    "mla",
    "mtp_modules",
];

/// A model from a `[model]` table: `preset = "id"` with optional override keys from
/// [`MODEL_KEYS`] (the result gets the id `<preset>-modified` unless `id` is overridden), or an
/// inline definition with every required key. Problems are keyed under `at` (e.g. `model`).
///
/// ```
/// let t: toml::Table = toml::from_str(r#"preset = "gpt3-175b"
/// layers = 48"#).map_err(|e| e.to_string())?;
/// let m = xpusim::workload::model_from_table("s.toml", "model", t)?;
/// assert_eq!((m.layers, m.id.as_str()), (48, "gpt3-175b-modified"));
/// let typo: toml::Table = toml::from_str(r#"preset = "gpt3-175b"
/// layres = 48"#).map_err(|e| e.to_string())?;
/// let e = xpusim::workload::model_from_table("s.toml", "model", typo).unwrap_err().to_string();
/// assert!(e.contains("model.layres") && e.contains("did you mean `layers`"), "{e}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// An unknown preset, unknown keys (with the nearest valid key), and every invalid value.
pub fn model_from_table(file: &str, at: &str, mut table: toml::Table) -> Result<Model> {
    let invalid = |problems| Error::Invalid {
        file: file.to_string(),
        problems,
    };
    let mut problems = Vec::new();
    for k in table.keys() {
        if k != "preset" && !MODEL_KEYS.contains(&k.as_str()) {
            let hint = nearest(k, MODEL_KEYS.iter().copied())
                .map_or_else(String::new, |n| format!("; did you mean `{n}`?"));
            problems.push(Problem::new(
                format!("{at}.{k}"),
                format!(
                    "unknown key{hint} (a model takes: preset, {})",
                    MODEL_KEYS.join(", ")
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    if let Some(p) = table.remove("preset") {
        let Some(id) = p.as_str() else {
            return Err(invalid(vec![Problem::new(
                format!("{at}.preset"),
                "must be a preset id (a string)",
            )]));
        };
        let Some(mut base) = preset_table(id) else {
            let known = presets()?;
            let e = Error::unknown("model", id, known.iter().map(|m| m.id.as_str()));
            return Err(invalid(vec![Problem::new(
                format!("{at}.preset"),
                e.to_string(),
            )]));
        };
        if !table.is_empty() && !table.contains_key("id") {
            base.insert("id".into(), toml::Value::String(format!("{id}-modified")));
        }
        base.extend(table);
        table = base;
    }
    let de = toml::Value::Table(table);
    let parsed: ModelFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            at.to_string()
        } else {
            format!("{at}.{path}")
        };
        invalid(vec![Problem::new(key, e.into_inner().to_string())])
    })?;
    match validate_models(file, vec![parsed]) {
        Ok(mut v) => v
            .pop()
            .ok_or_else(|| invalid(vec![Problem::new(at, "no model")])),
        Err(Error::Invalid { problems, .. }) => Err(invalid(
            problems
                .into_iter()
                .map(|p| {
                    let rest = p.key.split_once("].").map_or("", |(_, r)| r);
                    Problem::new(
                        if rest.is_empty() {
                            at.to_string()
                        } else {
                            format!("{at}.{rest}")
                        },
                        p.reason,
                    )
                })
                .collect(),
        )),
        Err(e) => Err(e),
    }
}

/// The raw table of a preset, as written in its file.
fn preset_table(id: &str) -> Option<toml::Table> {
    PRESETS.iter().find_map(|(_, text)| {
        let t: toml::Table = toml::from_str(text).ok()?;
        t.get("models")?
            .as_array()?
            .iter()
            .filter_map(|m| m.as_table())
            .find(|m| m.get("id").and_then(|v| v.as_str()) == Some(id))
            .cloned()
    })
}
