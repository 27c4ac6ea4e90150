//! States and kinds with explicit names: what the database stores and what an event or a log
//! line carries is the name written next to each variant, never the Rust variant's own name,
//! so renaming a variant cannot silently change what consumers receive.
//!
//! ```
//! xiaoneng_kit::named_enum! {
//!     /// Where a ticket stands.
//!     pub enum TicketState {
//!         Waiting = "waiting",
//!         Called = "called",
//!     }
//! }
//! assert_eq!(TicketState::Called.name(), "called");
//! assert_eq!(TicketState::from_name("waiting"), Some(TicketState::Waiting));
//! ```
//!
//! The enum is a text column for sqlx (decoding an unknown name is an error, not a default)
//! and a string for serde.

#[doc(hidden)]
pub use {serde as __serde, sqlx as __sqlx};

/// Declares a fieldless enum whose variants each carry their database and wire name.
#[macro_export]
macro_rules! named_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The database and wire name.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl $crate::names::__sqlx::Type<$crate::names::__sqlx::Postgres> for $name {
            fn type_info() -> $crate::names::__sqlx::postgres::PgTypeInfo {
                <&str as $crate::names::__sqlx::Type<$crate::names::__sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &$crate::names::__sqlx::postgres::PgTypeInfo) -> bool {
                <&str as $crate::names::__sqlx::Type<$crate::names::__sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> $crate::names::__sqlx::Decode<'r, $crate::names::__sqlx::Postgres> for $name {
            fn decode(value: $crate::names::__sqlx::postgres::PgValueRef<'r>) -> Result<Self, $crate::names::__sqlx::error::BoxDynError> {
                let s = <&str as $crate::names::__sqlx::Decode<$crate::names::__sqlx::Postgres>>::decode(value)?;
                $name::from_name(s).ok_or_else(|| format!("{s:?} is not a {}", stringify!($name)).into())
            }
        }

        impl $crate::names::__sqlx::Encode<'_, $crate::names::__sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut $crate::names::__sqlx::postgres::PgArgumentBuffer,
            ) -> Result<$crate::names::__sqlx::encode::IsNull, $crate::names::__sqlx::error::BoxDynError> {
                <&str as $crate::names::__sqlx::Encode<$crate::names::__sqlx::Postgres>>::encode_by_ref(&self.name(), buf)
            }
        }

        impl $crate::names::__serde::Serialize for $name {
            fn serialize<S: $crate::names::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> $crate::names::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::names::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as $crate::names::__serde::Deserialize>::deserialize(d)?;
                $name::from_name(&s).ok_or_else(|| $crate::names::__serde::de::Error::custom(format!("{s:?} is not a {}", stringify!($name))))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    named_enum! {
        enum Light {
            Red = "red",
            GreenArrow = "green_arrow",
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        assert_eq!(
            Light::ALL.iter().map(|l| l.name()).collect::<Vec<_>>(),
            ["red", "green_arrow"]
        );
        assert_eq!(Light::from_name("green_arrow"), Some(Light::GreenArrow));
        assert_eq!(Light::from_name("GreenArrow"), None);
        assert_eq!(
            serde_json::to_string(&Light::GreenArrow).unwrap(),
            "\"green_arrow\""
        );
        assert_eq!(
            serde_json::from_str::<Light>("\"red\"").unwrap(),
            Light::Red
        );
        assert!(serde_json::from_str::<Light>("\"Red\"").is_err());
        assert_eq!(Light::Red.to_string(), "red");
    }
}
