//! The demo's MySQL database: recreated from the extractor's DDL and filled with generated klines.

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Executor};
use store::mysql_url::MysqlUri;

use crate::market::Generated;

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The URL does not parse or names no database.
    #[error("bad MySQL URL: {0}")]
    Url(String),
    /// The database name is not a plain identifier (it is spliced into SQL).
    #[error("database name `{0}` must be letters, digits and `_` only")]
    Name(String),
    /// MySQL refused a statement or a connection.
    #[error("{what}: {source}")]
    Sql {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

fn sql(what: &'static str) -> impl FnOnce(sqlx::Error) -> SeedError {
    move |source| SeedError::Sql { what, source }
}

/// The database a MySQL URL names (its path), e.g. `dm_demo` for `mysql://root@host/dm_demo`.
///
/// # Errors
/// [`SeedError::Url`] when there is no path, [`SeedError::Name`] when it is not an identifier.
pub fn database_name(url: &str) -> Result<String, SeedError> {
    let path = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(_, db)| db.to_owned())
        .filter(|db| !db.is_empty() && !db.contains('@') && !db.contains(':'))
        .ok_or_else(|| SeedError::Url(format!("`{url}` names no database")))?;
    if path.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(path)
    } else {
        Err(SeedError::Name(path))
    }
}

/// Drops and recreates the database `url` names, loads the extractor's DDL and inserts every
/// generated row. Returns the pool on the new database.
///
/// # Errors
/// A bad URL or name, or the first statement MySQL refuses.
pub async fn recreate(url: &str, data: &Generated) -> Result<MySqlPool, SeedError> {
    let name = database_name(url)?;
    let uri = MysqlUri::parse(url).map_err(|e| SeedError::Url(e.to_string()))?;
    let admin = MySqlPoolOptions::new()
        .max_connections(1)
        .connect_with(uri.to_options().database("information_schema"))
        .await
        .map_err(sql("connecting to MySQL"))?;
    admin
        .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .await
        .map_err(sql("dropping the old demo database"))?;
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .map_err(sql("creating the demo database"))?;
    admin.close().await;
    let pool = MySqlPoolOptions::new()
        .max_connections(2)
        .connect_with(uri.to_options())
        .await
        .map_err(sql("connecting to the demo database"))?;
    store::seed::apply_ddl(&pool, store::seed::EXTRACTOR_SCHEMA)
        .await
        .map_err(sql("loading the extractor's DDL"))?;
    for d in &data.datasets {
        store::seed::insert_klines(&pool, d.timeframe, &d.symbol, &d.rows)
            .await
            .map_err(sql("inserting klines"))?;
    }
    Ok(pool)
}

/// Drops the database `url` names (the end of a test run).
///
/// # Errors
/// A bad URL or name, or MySQL refusing the drop.
pub async fn drop_database(url: &str) -> Result<(), SeedError> {
    let name = database_name(url)?;
    let uri = MysqlUri::parse(url).map_err(|e| SeedError::Url(e.to_string()))?;
    let admin = MySqlPoolOptions::new()
        .max_connections(1)
        .connect_with(uri.to_options().database("information_schema"))
        .await
        .map_err(sql("connecting to MySQL"))?;
    admin
        .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .await
        .map_err(sql("dropping the demo database"))?;
    admin.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_the_url_path() {
        assert_eq!(
            database_name("mysql://root@127.0.0.1:3306/dm_demo").ok(),
            Some("dm_demo".into())
        );
        assert_eq!(
            database_name("mysql+pymysql://u:p@db:3306/petrosa_crypto?charset=utf8mb4").ok(),
            Some("petrosa_crypto".into())
        );
        assert!(database_name("mysql://root@127.0.0.1:3306/").is_err());
        assert!(matches!(
            database_name("mysql://root@h/x;drop"),
            Err(SeedError::Name(_))
        ));
    }
}
