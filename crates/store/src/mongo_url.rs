//! The database a `MONGODB_URL` names: its path segment, or `petrosa_data_manager` when the path
//! is empty (`docs/configuration.md`).

/// Used when the URL has no path segment (`…net/` or `…net/?retryWrites=true`).
pub const DEFAULT_DATABASE: &str = "petrosa_data_manager";

/// The database named by the URL's path segment, or [`DEFAULT_DATABASE`].
/// Works for `mongodb://` and `mongodb+srv://`, with or without credentials and options.
pub fn database_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .split_once('/')
        .map_or("", |(_, path)| path)
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let db = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if db.is_empty() {
        DEFAULT_DATABASE.to_owned()
    } else {
        db.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_the_path_or_the_default() {
        assert_eq!(
            database_name("mongodb+srv://u:p@cluster0.abc.mongodb.net/?retryWrites=true"),
            DEFAULT_DATABASE
        );
        assert_eq!(
            database_name("mongodb://127.0.0.1:27017/"),
            DEFAULT_DATABASE
        );
        assert_eq!(database_name("mongodb://127.0.0.1:27017"), DEFAULT_DATABASE);
        assert_eq!(
            database_name("mongodb://u:p%2Fq@h1:1,h2:2/analytics?authSource=admin"),
            "analytics"
        );
    }
}
