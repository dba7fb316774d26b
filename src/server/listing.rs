//! CVAT's list query language, shared by every list endpoint: simple filters (`?state=new`),
//! `search` (any search field contains the text, case-insensitively), `filter` (a JSON Logic
//! expression, as the UI's filter builder sends), `sort` (`name,-id`) and pagination
//! (`page`, `page_size`). Each resource names its fields once, as JSON pointers into its
//! response, in a [`Fields`] table.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{json, Value};

use super::ApiError;

/// A resource's queryable fields: query name → JSON pointer into the resource's JSON.
pub(crate) struct Fields {
    pub fields: &'static [(&'static str, &'static str)],
    /// The fields `search` looks in.
    pub search: &'static [&'static str],
}

impl Fields {
    fn pointer(&self, name: &str) -> Option<&'static str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }
}

/// A list request's query string, parsed once.
pub(crate) struct ListQuery {
    params: HashMap<String, String>,
}

/// Largest page (the UI fetches "everything" 500 at a time).
const MAX_PAGE_SIZE: usize = 1000;

impl ListQuery {
    pub fn new(params: HashMap<String, String>) -> ListQuery {
        ListQuery { params }
    }

    /// A raw parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// An integer parameter: absent → `None`, not an integer → 400.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!("'{name}' must be an integer, got '{v}'"))
                })
            })
            .transpose()
    }

    /// Keeps the items that pass the simple filters, `search` and `filter`; sorts them by `sort`
    /// (else by `default_sort`); answers the requested page in CVAT's envelope.
    pub fn answer(
        &self,
        fields: &Fields,
        mut items: Vec<Value>,
        default_sort: &str,
        base: &str,
        path: &str,
    ) -> Result<Value, ApiError> {
        let filter = match self.get("filter").filter(|f| !f.trim().is_empty()) {
            Some(f) => Some(serde_json::from_str::<Value>(f).map_err(|e| {
                ApiError::bad_request(format!("'filter' is not valid JSON Logic: {e}"))
            })?),
            None => None,
        };
        let simple: Vec<(&'static str, &'static str, &str)> = fields
            .fields
            .iter()
            .filter_map(|(name, ptr)| self.get(name).map(|v| (*name, *ptr, v)))
            .collect();
        let search = self.get("search").map(str::to_lowercase);
        let mut kept = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            let mut simple_ok = true;
            for (name, ptr, want) in &simple {
                simple_ok &= item
                    .pointer(ptr)
                    .map(|v| equals(name, v, want))
                    .transpose()?
                    .unwrap_or(false);
            }
            let search_ok = search.as_deref().is_none_or(|s| {
                fields.search.iter().any(|f| {
                    fields
                        .pointer(f)
                        .and_then(|p| item.pointer(p))
                        .is_some_and(|v| text(v).to_lowercase().contains(s))
                })
            });
            let filter_ok = match &filter {
                Some(f) => truthy(&eval(f, &item, fields)?),
                None => true,
            };
            if simple_ok && search_ok && filter_ok {
                kept.push(item);
            }
        }
        let sort = self
            .get("sort")
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(default_sort);
        sort_items(&mut kept, sort, fields)?;
        Ok(self.page(kept, base, path))
    }

    /// CVAT's page envelope: `count`, `next`, `previous`, `results`. `page_size=all` is one page
    /// of everything, as in CVAT (the items are in memory already).
    pub fn page(&self, items: Vec<Value>, base: &str, path: &str) -> Value {
        let size = match self.get("page_size") {
            Some("all") => items.len().max(1),
            other => other
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(10)
                .clamp(1, MAX_PAGE_SIZE),
        };
        let page = self
            .get("page")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let count = items.len();
        let start = (page - 1).saturating_mul(size);
        let results: Vec<Value> = items.into_iter().skip(start).take(size).collect();
        let link = |p: usize| {
            let mut q: Vec<(&str, String)> = self
                .params
                .iter()
                .filter(|(k, _)| k.as_str() != "page")
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            q.sort();
            q.push(("page", p.to_string()));
            let q: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            format!("{base}{path}?{}", q.join("&"))
        };
        let next = (start.saturating_add(size) < count).then(|| link(page + 1));
        let previous = (page > 1).then(|| link(page - 1));
        json!({"count": count, "next": next, "previous": previous, "results": results})
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value as the text a query string compares it with (`true`, `12`, `new`; null → empty).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether a field's value equals a simple filter's text; booleans take Django's spellings
/// (`true`/`false`/`1`/`0`, any case) and refuse others.
fn equals(name: &str, v: &Value, want: &str) -> Result<bool, ApiError> {
    match v {
        Value::Bool(b) => match want.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(*b),
            "false" | "0" => Ok(!*b),
            _ => Err(ApiError::bad_request(format!(
                "'{name}' must be true or false, got '{want}'"
            ))),
        },
        other => Ok(text(other) == want),
    }
}

/// Sorts by `spec` (`name,-id`: later keys break ties of earlier ones). Unknown keys are 400s,
/// as in CVAT.
pub(crate) fn sort_items(items: &mut [Value], spec: &str, fields: &Fields) -> Result<(), ApiError> {
    let mut keys = Vec::new();
    for key in spec.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let (desc, name) = match key.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, key),
        };
        let ptr = fields
            .pointer(name)
            .ok_or_else(|| ApiError::bad_request(format!("'sort': cannot sort by '{name}'")))?;
        keys.push((desc, ptr));
    }
    items.sort_by(|a, b| {
        for (desc, ptr) in &keys {
            let o = cmp_json(a.pointer(ptr), b.pointer(ptr));
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(())
}

/// Orders JSON values: numbers numerically, strings (ISO dates too) by text, null first.
pub(crate) fn cmp_json(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Null) | None, Some(Value::Null) | None) => Ordering::Equal,
        (Some(Value::Null) | None, _) => Ordering::Less,
        (_, Some(Value::Null) | None) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fn bad(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("'filter': {msg}"))
}

/// Evaluates the JSON Logic operators CVAT's filter accepts: `and`, `or`, `!`, `==`, `!=`,
/// `<`, `<=`, `>`, `>=` (three operands: between), `in` (in a list, or a substring,
/// case-insensitively) and `var` (one of the resource's fields).
fn eval(expr: &Value, item: &Value, fields: &Fields) -> Result<Value, ApiError> {
    let Value::Object(map) = expr else {
        return Ok(expr.clone());
    };
    let mut entries = map.iter();
    let (Some((op, args)), None) = (entries.next(), entries.next()) else {
        return Err(bad("each operation is an object with one operator"));
    };
    if op == "var" {
        let name = match args {
            Value::String(s) => s.as_str(),
            Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        let ptr = fields
            .pointer(name)
            .ok_or_else(|| bad(format!("unknown field '{name}'")))?;
        return Ok(item.pointer(ptr).cloned().unwrap_or(Value::Null));
    }
    let args: Vec<Value> = match args {
        Value::Array(a) => a
            .iter()
            .map(|a| eval(a, item, fields))
            .collect::<Result<_, _>>()?,
        other => vec![eval(other, item, fields)?],
    };
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(bad(format!("'{op}' takes {n} operands")))
        }
    };
    let compare = |a: &Value, b: &Value| cmp_json(Some(a), Some(&coerce(b, a)));
    Ok(Value::Bool(match op.as_str() {
        "and" => args.iter().all(truthy),
        "or" => args.iter().any(truthy),
        "!" => {
            arity(1)?;
            !truthy(&args[0])
        }
        "==" | "!=" => {
            arity(2)?;
            let eq = compare(&args[0], &args[1]) == Ordering::Equal;
            eq == (op == "==")
        }
        "<" | "<=" | ">" | ">=" if args.len() == 3 => {
            // Between: `{"<=": [lo, {"var": x}, hi]}`.
            let lo = compare(&args[1], &args[0]);
            let hi = compare(&args[1], &args[2]);
            if op.starts_with('<') {
                let strict = op == "<";
                (if strict { lo.is_gt() } else { lo.is_ge() })
                    && (if strict { hi.is_lt() } else { hi.is_le() })
            } else {
                return Err(bad(format!("'{op}' takes 2 operands")));
            }
        }
        "<" | "<=" | ">" | ">=" => {
            arity(2)?;
            let o = compare(&args[0], &args[1]);
            match op.as_str() {
                "<" => o.is_lt(),
                "<=" => o.is_le(),
                ">" => o.is_gt(),
                _ => o.is_ge(),
            }
        }
        "in" => {
            arity(2)?;
            match &args[1] {
                Value::Array(list) => list.iter().any(|v| compare(&args[0], v) == Ordering::Equal),
                Value::String(hay) => hay.to_lowercase().contains(&text(&args[0]).to_lowercase()),
                _ => false,
            }
        }
        other => return Err(bad(format!("unsupported operator '{other}'"))),
    }))
}

/// `b` as the type of `a` where the UI sends numbers as strings (`{"==": [{"var":"id"}, "3"]}`).
fn coerce(b: &Value, a: &Value) -> Value {
    match (a, b) {
        (Value::Number(_), Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| b.clone()),
        (Value::String(_), Value::Number(n)) => Value::String(n.to_string()),
        _ => b.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: Fields = Fields {
        fields: &[
            ("id", "/id"),
            ("state", "/state"),
            ("assignee", "/assignee/username"),
            ("task_name", "/task_name"),
        ],
        search: &["task_name", "assignee"],
    };

    fn items() -> Vec<Value> {
        vec![
            json!({"id": 1, "state": "new", "assignee": null, "task_name": "Cars"}),
            json!({"id": 2, "state": "in progress", "assignee": {"username": "ann"}, "task_name": "people"}),
            json!({"id": 3, "state": "completed", "assignee": {"username": "bob"}, "task_name": "Cars 2"}),
        ]
    }

    fn ids(q: &[(&str, &str)]) -> Result<Vec<i64>, ApiError> {
        let q = ListQuery::new(
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let v = q.answer(&FIELDS, items(), "-id", "", "/api/x")?;
        Ok(v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect())
    }

    #[test]
    fn simple_filters_search_and_sort() {
        assert_eq!(ids(&[]).unwrap(), vec![3, 2, 1]);
        assert_eq!(ids(&[("state", "new")]).unwrap(), vec![1]);
        assert_eq!(ids(&[("assignee", "ann")]).unwrap(), vec![2]);
        assert_eq!(ids(&[("search", "cars")]).unwrap(), vec![3, 1]);
        assert_eq!(ids(&[("sort", "assignee,id")]).unwrap(), vec![1, 2, 3]);
        assert!(ids(&[("sort", "nope")]).is_err());
    }

    #[test]
    fn json_logic_filters() {
        let f = |s: &str| ids(&[("filter", s)]);
        assert_eq!(
            f(r#"{"and":[{"==":[{"var":"state"},"new"]}]}"#).unwrap(),
            vec![1]
        );
        assert_eq!(
            f(r#"{"!":{"==":[{"var":"state"},"new"]}}"#).unwrap(),
            vec![3, 2]
        );
        assert_eq!(
            f(r#"{"in":["CARS",{"var":"task_name"}]}"#).unwrap(),
            vec![3, 1]
        );
        assert_eq!(f(r#"{"in":[{"var":"id"},[1,3]]}"#).unwrap(), vec![3, 1]);
        assert_eq!(f(r#"{"<=":[2,{"var":"id"},3]}"#).unwrap(), vec![3, 2]);
        assert_eq!(f(r#"{">":[{"var":"id"},"1"]}"#).unwrap(), vec![3, 2]);
        assert_eq!(
            f(r#"{"or":[{"==":[{"var":"assignee"},"bob"]},{"==":[{"var":"id"},1]}]}"#).unwrap(),
            vec![3, 1]
        );
        assert!(f(r#"{"==":[{"var":"secret"},1]}"#).is_err());
        assert!(f(r#"{"regex":[1,2]}"#).is_err());
        assert!(f("not json").is_err());
    }

    #[test]
    fn booleans_take_djangos_spellings_and_page_size_all_is_everything() {
        const ACTIVE: Fields = Fields {
            fields: &[("id", "/id"), ("is_active", "/is_active")],
            search: &[],
        };
        let users = vec![
            json!({"id": 1, "is_active": true}),
            json!({"id": 2, "is_active": false}),
        ];
        let answer = |k: &str, v: &str| {
            let q = ListQuery::new([(k.to_string(), v.to_string())].into_iter().collect());
            q.answer(&ACTIVE, users.clone(), "id", "", "/api/users")
        };
        for (v, want) in [("true", 1), ("True", 1), ("1", 1), ("false", 2), ("0", 2)] {
            let got = answer("is_active", v).unwrap();
            assert_eq!(got["count"], 1, "{v}");
            assert_eq!(got["results"][0]["id"], want, "{v}");
        }
        let e = answer("is_active", "maybe").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("'is_active' must be true or false"),
            "{}",
            e.message
        );
        let many: Vec<Value> = (1..=25).map(|i| json!({"id": i})).collect();
        let q = ListQuery::new(
            [("page_size".to_string(), "all".to_string())]
                .into_iter()
                .collect(),
        );
        let v = q.page(many, "", "/api/users");
        assert_eq!(v["results"].as_array().unwrap().len(), 25);
        assert_eq!(v["next"], Value::Null);
    }

    #[test]
    fn pages_link_with_the_query() {
        let q = ListQuery::new(
            [("page_size", "1"), ("state", "new"), ("page", "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let v = q.page(items(), "http://h", "/api/jobs");
        assert_eq!(v["count"], 3);
        assert_eq!(v["next"], "http://h/api/jobs?page_size=1&state=new&page=2");
        assert_eq!(v["previous"], Value::Null);
    }
}
