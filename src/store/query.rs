//! A small WHERE-clause builder for the list actions: values within one
//! filter are OR'ed, filters are AND'ed, as TAT documents. Every value is a
//! bound parameter; only column names (constants in this module's callers)
//! are spliced into SQL.

use rusqlite::types::Value;

#[derive(Default)]
pub struct Where {
    clauses: Vec<String>,
    pub params: Vec<Value>,
}

impl Where {
    /// `col IN (values…)`; an empty list adds nothing.
    pub fn any_of(&mut self, col: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.clauses
                .push(format!("{col} IN ({})", super::placeholders(values.len())));
            self.params
                .extend(values.iter().map(|v| Value::Text(v.clone())));
        }
        self
    }

    /// A raw clause with its parameters, e.g. a tag EXISTS sub-query.
    pub fn clause(&mut self, sql: String, params: Vec<Value>) -> &mut Self {
        self.clauses.push(sql);
        self.params.extend(params);
        self
    }

    /// Tag filters over a JSON array column of {"Key","Value"} objects.
    pub fn tags(&mut self, col: &str, tags: &TagFilter) -> &mut Self {
        let exists = |cond: &str| format!("EXISTS (SELECT 1 FROM json_each({col}) WHERE {cond})");
        for (field, list) in [("Key", &tags.keys), ("Value", &tags.values)] {
            if !list.is_empty() {
                let cond = format!(
                    "json_extract(value, '$.{field}') IN ({})",
                    super::placeholders(list.len())
                );
                let p = list.iter().map(|v| Value::Text(v.clone())).collect();
                self.clause(exists(&cond), p);
            }
        }
        for (k, vals) in &tags.pairs {
            let cond = format!(
                "json_extract(value, '$.Key') = ? AND json_extract(value, '$.Value') IN ({})",
                super::placeholders(vals.len())
            );
            let mut p = vec![Value::Text(k.clone())];
            p.extend(vals.iter().map(|v| Value::Text(v.clone())));
            self.clause(exists(&cond), p);
        }
        self
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Tag filters: `tag-key` (has any of these keys), `tag-value` (has any of
/// these values), and `tag:KEY` (has KEY with any of the values); AND'ed.
#[derive(Default, Debug, Clone)]
pub struct TagFilter {
    pub keys: Vec<String>,
    pub values: Vec<String>,
    pub pairs: Vec<(String, Vec<String>)>,
}

/// Limit/Offset as validated by the API.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

/// One page of `table` rows matching `w`, in `order`, with the total count
/// of matches, as every list action returns them.
pub fn page_of<T>(
    conn: &rusqlite::Connection,
    table: &str,
    columns: &str,
    w: &Where,
    order: &str,
    page: Page,
    from_row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> super::Result<(i64, Vec<T>)> {
    use rusqlite::params_from_iter;
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM {table}{}", w.sql()),
        params_from_iter(w.params.iter()),
        |r| r.get(0),
    )?;
    let mut p = w.params.clone();
    p.push(page.limit.into());
    p.push(page.offset.into());
    let mut st = conn.prepare(&format!(
        "SELECT {columns} FROM {table}{} ORDER BY {order} LIMIT ? OFFSET ?",
        w.sql()
    ))?;
    let rows = st
        .query_map(params_from_iter(p.iter()), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((total, rows))
}
