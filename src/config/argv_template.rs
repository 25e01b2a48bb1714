//! An argv template of `[command]`: each element is text with `{key}` placeholders (`{{` and
//! `}}` are literal braces), or a whole `{key?text}` element that stands for `text` when the
//! boolean key is true and for nothing when it is false. Parsed once when the config is read
//! (an unknown placeholder is an error there), rendered per run.

use super::locate::suggestion;

/// One piece of an argv element.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    /// `{key}`: a train key, `data_seed`, or `sweep.NAME`.
    Value(String),
}

/// One argv element: pieces joined, or `{key?text}` (the text when the boolean key is true,
/// nothing when false).
#[derive(Clone, Debug, PartialEq)]
enum Element {
    Joined(Vec<Piece>),
    Flag { key: String, text: String },
}

/// A parsed argv.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgvTemplate {
    elements: Vec<Element>,
}

impl ArgvTemplate {
    /// Parses every element; a placeholder must be one of `accepted`.
    pub fn parse(argv: &[String], accepted: &[String]) -> Result<ArgvTemplate, String> {
        let elements = argv
            .iter()
            .map(|e| parse_element(e, accepted))
            .collect::<Result<_, _>>()?;
        Ok(ArgvTemplate { elements })
    }

    /// The keys of the `{key?text}` elements (each must be a true/false setting).
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.elements.iter().filter_map(|e| match e {
            Element::Flag { key, .. } => Some(key.as_str()),
            Element::Joined(_) => None,
        })
    }

    /// The argv of one run: each placeholder replaced by `value(name)`; a `{key?text}` element
    /// kept as `text` when the value is `true`. Placeholders whose value is `None` stay as
    /// written (the tables' `argv` leaves `{sweep.*}` so).
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let mut out = Vec::with_capacity(self.elements.len());
        for element in &self.elements {
            match element {
                Element::Flag { key, text } => match value(key).as_deref() {
                    Some("true") => out.push(text.clone()),
                    Some(_) => {}
                    None => out.push(format!("{{{key}?{text}}}")),
                },
                Element::Joined(pieces) => out.push(
                    pieces
                        .iter()
                        .map(|p| match p {
                            Piece::Text(t) => t.clone(),
                            Piece::Value(name) => {
                                value(name).unwrap_or_else(|| format!("{{{name}}}"))
                            }
                        })
                        .collect(),
                ),
            }
        }
        out
    }

    /// The program, when it is written without placeholders.
    pub fn program(&self) -> Option<&str> {
        match &self.elements[0] {
            Element::Joined(pieces) => match pieces.as_slice() {
                [Piece::Text(t)] => Some(t),
                _ => None,
            },
            Element::Flag { .. } => None,
        }
    }
}

/// One argv element: `{key}` placeholders in text, `{{`/`}}` literal braces, or a whole
/// `{key?text}` element.
fn parse_element(text: &str, accepted: &[String]) -> Result<Element, String> {
    let check = |name: &str| {
        if accepted.iter().any(|a| a == name) {
            Ok(())
        } else {
            let names: Vec<&str> = accepted.iter().map(String::as_str).collect();
            Err(format!(
                "\"{text}\": unknown placeholder {{{name}}}{}; accepted: {}",
                suggestion(name, &names),
                names.join(", ")
            ))
        }
    };
    if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        if let Some((key, flag)) = inner.split_once('?') {
            if !key.contains(['{', '}']) && !flag.contains(['{', '}']) {
                check(key)?;
                return Ok(Element::Flag {
                    key: key.to_string(),
                    text: flag.to_string(),
                });
            }
        }
    }
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed || name.is_empty() || name.contains('{') {
                    return Err(format!(
                        "\"{text}\": a '{{' without its '}}' (write {{{{ for a literal brace)"
                    ));
                }
                check(&name)?;
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Value(name));
            }
            '}' => {
                return Err(format!(
                    "\"{text}\": a '}}' without its '{{' (write }}}} for a literal brace)"
                ))
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(Element::Joined(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> Vec<String> {
        ["learning_rate", "clip", "sweep.run_dir"]
            .map(String::from)
            .to_vec()
    }

    fn element(text: &str) -> Result<Element, String> {
        parse_element(text, &accepted())
    }

    fn template(argv: &[&str]) -> ArgvTemplate {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        ArgvTemplate::parse(&argv, &accepted()).unwrap()
    }

    #[test]
    fn placeholders_render_braces_stay_literal_and_flags_drop_when_false() {
        let s = template(&[
            "python3",
            "--lr={learning_rate}",
            "{{x}}",
            "{clip?--clip}",
            "{sweep.run_dir}/m",
        ]);
        let values = |clip: &'static str| {
            move |name: &str| match name {
                "learning_rate" => Some("0.001".to_string()),
                "clip" => Some(clip.to_string()),
                _ => None,
            }
        };
        assert_eq!(
            s.render(values("true")),
            [
                "python3",
                "--lr=0.001",
                "{x}",
                "--clip",
                "{sweep.run_dir}/m"
            ]
        );
        assert_eq!(
            s.render(values("false")),
            ["python3", "--lr=0.001", "{x}", "{sweep.run_dir}/m"]
        );
    }

    #[test]
    fn unknown_and_unbalanced_placeholders_are_refused() {
        let err = element("--lr={learnig_rate}").unwrap_err();
        assert!(
            err.contains("unknown placeholder {learnig_rate}") && err.contains("learning_rate"),
            "{err}"
        );
        assert!(element("{oops").unwrap_err().contains("without its"));
        assert!(element("a}b").unwrap_err().contains("without its"));
        assert!(element("{sweep.nothing}").is_err());
    }
}
