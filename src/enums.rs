//! Named enums: one declaration gives a fieldless enum whose variants have fixed names in configs
//! and tables, with `as_str`, `FromStr` (an unknown name is an error that lists the accepted ones),
//! `Display` and the list of names. Every enum that is written to or read from a table or a config
//! is declared with [`named_enum!`], so a name is written once.

/// Declares a fieldless enum with one name per variant. Attributes (derives, serde renames) pass
/// through; a unit test of each serde enum checks that serde's names agree with these.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The accepted names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name used in configs and tables.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} `{other}`; accepted: {}",
                        stringify!($name).to_lowercase(),
                        Self::NAMES.join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use named_enum;
