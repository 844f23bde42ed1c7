//! Intrinsic functions (`States.Format('{} {}', $.a, $.b)` and friends), parsed once into
//! a small expression tree and evaluated against the input and the context object.

use base64::Engine as _;
use serde_json::{Number, Value, json};

use crate::Failure;
use crate::paths::{compact, select};

/// An argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Path(String),
    Call(String, Vec<Expr>),
}

/// Parses `States.Name(args...)`.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    let expr = p.call()?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text after the call in `{text}`"));
    }
    Ok(expr)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at character {} of `{}`", self.i + 1, self.text)
    }

    fn call(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.')
        {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if !name.starts_with("States.") {
            return Err(self.err("expected an intrinsic function such as States.Format"));
        }
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(format!("`{name}` is not an intrinsic function"));
        }
        self.skip_ws();
        if self.s.get(self.i) != Some(&b'(') {
            return Err(self.err("expected `(`"));
        }
        self.i += 1;
        let mut args = Vec::new();
        loop {
            self.skip_ws();
            if self.s.get(self.i) == Some(&b')') {
                self.i += 1;
                break;
            }
            if !args.is_empty() {
                if self.s.get(self.i) != Some(&b',') {
                    return Err(self.err("expected `,` or `)`"));
                }
                self.i += 1;
                self.skip_ws();
            }
            args.push(self.arg()?);
        }
        Ok(Expr::Call(name, args))
    }

    fn arg(&mut self) -> Result<Expr, String> {
        match self.s.get(self.i) {
            Some(b'\'') => self.string(),
            Some(b'$') => {
                let start = self.i;
                let mut depth = 0i32;
                let mut quote = false;
                while self.i < self.s.len() {
                    let c = self.s[self.i];
                    match c {
                        b'\'' => quote = !quote,
                        b'[' | b'(' if !quote => depth += 1,
                        b']' if !quote => depth -= 1,
                        b')' if !quote && depth == 0 => break,
                        b')' if !quote => depth -= 1,
                        b',' if !quote && depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                let path = String::from_utf8_lossy(&self.s[start..self.i])
                    .trim()
                    .to_owned();
                crate::paths::check_path(&path)?;
                Ok(Expr::Path(path))
            }
            Some(b'S') => self.call(),
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b')') {
                    self.i += 1;
                }
                let word = String::from_utf8_lossy(&self.s[start..self.i])
                    .trim()
                    .to_owned();
                match serde_json::from_str::<Value>(&word) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                        Ok(Expr::Literal(v))
                    }
                    _ => Err(format!(
                        "`{word}` is not an argument (a 'string', a number, true, false, null, a path or a call)"
                    )),
                }
            }
            None => Err(self.err("unexpected end")),
        }
    }

    /// A single-quoted string; `\'`, `\{`, `\}` and `\\` are escapes.
    fn string(&mut self) -> Result<Expr, String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => match self.s.get(self.i) {
                    Some(&n @ (b'\'' | b'{' | b'}' | b'\\')) => {
                        // Braces stay escaped for States.Format to see.
                        if n == b'{' || n == b'}' {
                            out.push(b'\\');
                        }
                        out.push(n);
                        self.i += 1;
                    }
                    _ => out.push(b'\\'),
                },
                b'\'' => {
                    return Ok(Expr::Literal(Value::String(
                        String::from_utf8_lossy(&out).into_owned(),
                    )));
                }
                _ => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }
}

const FUNCTIONS: [&str; 18] = [
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

fn fail(message: String) -> Failure {
    Failure::new("States.IntrinsicFailure", message)
}

/// Evaluates an intrinsic call given as text.
pub fn evaluate(text: &str, input: &Value, context: &Value) -> Result<Value, Failure> {
    let expr = parse(text).map_err(fail)?;
    eval(&expr, input, context)
}

fn eval(expr: &Expr, input: &Value, context: &Value) -> Result<Value, Failure> {
    match expr {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Path(p) => select(p, input, context).map_err(|_| {
            fail(format!(
                "the path {p} in an intrinsic function was not found in {}",
                compact(input)
            ))
        }),
        Expr::Call(name, args) => {
            let mut values = Vec::with_capacity(args.len());
            for (i, arg) in args.iter().enumerate() {
                match arg {
                    // Only States.Format's template reads `\{` and `\}` as escapes.
                    Expr::Literal(Value::String(s)) if !(i == 0 && name == "States.Format") => {
                        values.push(Value::String(s.replace("\\{", "{").replace("\\}", "}")));
                    }
                    other => values.push(eval(other, input, context)?),
                }
            }
            call(name, &values)
        }
    }
}

fn arity(
    name: &str,
    args: &[Value],
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), Failure> {
    if range.contains(&args.len()) {
        Ok(())
    } else {
        Err(fail(format!(
            "{name} takes {range:?} arguments, got {}",
            args.len()
        )))
    }
}

/// The longest input `States.Hash` takes, in characters.
const HASH_INPUT_MAX: usize = 10_000;

/// `data`'s digest by `algorithm` (MD5, SHA-1, SHA-256, SHA-384 or SHA-512), in lower-case
/// hex, as `States.Hash` returns it.
fn hash(data: &str, algorithm: &str) -> Result<String, Failure> {
    use sha2::Digest;
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    let bytes = data.as_bytes();
    Ok(match algorithm {
        "MD5" => hex(&md5::Md5::digest(bytes)),
        "SHA-1" => hex(&sha1::Sha1::digest(bytes)),
        "SHA-256" => hex(&sha2::Sha256::digest(bytes)),
        "SHA-384" => hex(&sha2::Sha384::digest(bytes)),
        "SHA-512" => hex(&sha2::Sha512::digest(bytes)),
        other => {
            return Err(fail(format!(
                "States.Hash: `{other}` is not one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
            )));
        }
    })
}

fn int(name: &str, v: &Value) -> Result<i64, Failure> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .ok_or_else(|| fail(format!("{name} needs an integer, got {}", compact(v))))
}

fn text<'a>(name: &str, v: &'a Value) -> Result<&'a str, Failure> {
    v.as_str()
        .ok_or_else(|| fail(format!("{name} needs a string, got {}", compact(v))))
}

fn array<'a>(name: &str, v: &'a Value) -> Result<&'a Vec<Value>, Failure> {
    v.as_array()
        .ok_or_else(|| fail(format!("{name} needs an array, got {}", compact(v))))
}

/// Calls intrinsic `name` with `args`. One arm per intrinsic of Step Functions' list, in
/// its order, so the function is as long as the list (about 180 lines): splitting it
/// would scatter a table that reads best whole.
fn call(name: &str, args: &[Value]) -> Result<Value, Failure> {
    match name {
        "States.Format" => {
            arity(name, args, 1..=usize::MAX)?;
            let template = text(name, &args[0])?;
            let mut out = String::new();
            let mut values = args[1..].iter();
            let mut chars = template.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if matches!(chars.peek(), Some('{') | Some('}')) => {
                        out.extend(chars.next());
                    }
                    '{' if chars.peek() == Some(&'}') => {
                        chars.next();
                        let v = values.next().ok_or_else(|| {
                            fail("States.Format has more {} than arguments".to_owned())
                        })?;
                        match v {
                            Value::String(s) => out.push_str(s),
                            other => out.push_str(&compact(other)),
                        }
                    }
                    _ => out.push(c),
                }
            }
            if values.next().is_some() {
                return Err(fail("States.Format has more arguments than {}".to_owned()));
            }
            Ok(Value::String(out))
        }
        "States.StringToJson" => {
            arity(name, args, 1..=1)?;
            serde_json::from_str(text(name, &args[0])?)
                .map_err(|e| fail(format!("States.StringToJson: not JSON: {e}")))
        }
        "States.JsonToString" => {
            arity(name, args, 1..=1)?;
            Ok(Value::String(compact(&args[0])))
        }
        "States.Array" => Ok(Value::Array(args.to_vec())),
        "States.ArrayPartition" => {
            arity(name, args, 2..=2)?;
            let size = int(name, &args[1])?;
            if size <= 0 {
                return Err(fail(
                    "States.ArrayPartition needs a positive chunk size".to_owned(),
                ));
            }
            Ok(Value::Array(
                array(name, &args[0])?
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "States.ArrayContains" => {
            arity(name, args, 2..=2)?;
            Ok(Value::Bool(array(name, &args[0])?.contains(&args[1])))
        }
        "States.ArrayRange" => {
            arity(name, args, 3..=3)?;
            let (from, to, step) = (
                int(name, &args[0])?,
                int(name, &args[1])?,
                int(name, &args[2])?,
            );
            if step == 0 {
                return Err(fail("States.ArrayRange needs a non-zero step".to_owned()));
            }
            let mut out = Vec::new();
            let mut n = from;
            while (step > 0 && n <= to) || (step < 0 && n >= to) {
                out.push(json!(n));
                if out.len() > 1000 {
                    return Err(fail(
                        "States.ArrayRange makes at most 1000 items".to_owned(),
                    ));
                }
                n += step;
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            arity(name, args, 2..=2)?;
            let items = array(name, &args[0])?;
            let i = int(name, &args[1])?;
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| fail(format!("States.ArrayGetItem: index {i} is out of bounds")))
        }
        "States.ArrayLength" => {
            arity(name, args, 1..=1)?;
            Ok(json!(array(name, &args[0])?.len()))
        }
        "States.ArrayUnique" => {
            arity(name, args, 1..=1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in array(name, &args[0])? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => {
            arity(name, args, 1..=1)?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(text(name, &args[0])?),
            ))
        }
        "States.Base64Decode" => {
            arity(name, args, 1..=1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text(name, &args[0])?)
                .map_err(|e| fail(format!("States.Base64Decode: {e}")))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| fail("States.Base64Decode: the data is not UTF-8".to_owned()))
        }
        "States.Hash" => {
            arity(name, args, 2..=2)?;
            let data = text(name, &args[0])?;
            if data.chars().count() > HASH_INPUT_MAX {
                return Err(fail(format!(
                    "States.Hash hashes at most {HASH_INPUT_MAX} characters"
                )));
            }
            hash(data, text(name, &args[1])?).map(Value::String)
        }
        "States.JsonMerge" => {
            arity(name, args, 3..=3)?;
            let (Some(a), Some(b)) = (args[0].as_object(), args[1].as_object()) else {
                return Err(fail("States.JsonMerge merges two objects".to_owned()));
            };
            if args[2] != Value::Bool(false) {
                return Err(fail(
                    "States.JsonMerge supports only shallow merges (false)".to_owned(),
                ));
            }
            let mut out = a.clone();
            for (k, v) in b {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(out))
        }
        "States.MathRandom" => {
            arity(name, args, 2..=3)?;
            let (lo, hi) = (int(name, &args[0])?, int(name, &args[1])?);
            if lo >= hi {
                return Err(fail("States.MathRandom needs start < end".to_owned()));
            }
            let mut rng = match args.get(2) {
                Some(seed) => fastrand::Rng::with_seed(int(name, seed)? as u64),
                None => fastrand::Rng::new(),
            };
            Ok(json!(rng.i64(lo..hi)))
        }
        "States.MathAdd" => {
            arity(name, args, 2..=2)?;
            let sum = int(name, &args[0])?
                .checked_add(int(name, &args[1])?)
                .ok_or_else(|| fail("States.MathAdd overflowed".to_owned()))?;
            Ok(Value::Number(Number::from(sum)))
        }
        "States.StringSplit" => {
            arity(name, args, 2..=2)?;
            let s = text(name, &args[0])?;
            let delimiters: Vec<char> = text(name, &args[1])?.chars().collect();
            Ok(Value::Array(
                s.split(|c| delimiters.contains(&c))
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
            ))
        }
        "States.UUID" => {
            arity(name, args, 0..=0)?;
            Ok(Value::String(uuid::Uuid::new_v4().to_string()))
        }
        other => Err(fail(format!("`{other}` is not an intrinsic function"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, input: Value) -> Result<Value, Failure> {
        evaluate(text, &input, &json!({}))
    }

    #[test]
    fn hash_gives_the_hex_digest_of_each_algorithm_aws_documents() {
        // The published digests of "abc" (RFC 1321, FIPS 180-4), and AWS's own example.
        let abc = |algorithm: &str| run(&format!("States.Hash('abc', '{algorithm}')"), json!({}));
        assert_eq!(
            abc("MD5").unwrap(),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            abc("SHA-1").unwrap(),
            json!("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            abc("SHA-256").unwrap(),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(
            abc("SHA-384")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("cb00753f45a35e8b")
        );
        assert!(
            abc("SHA-512")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("ddaf35a193617aba")
        );
        assert_eq!(
            run(
                "States.Hash($.Data, $.Algorithm)",
                json!({"Data": "input data", "Algorithm": "SHA-1"})
            )
            .unwrap(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        for bad in [
            "States.Hash('abc', 'SHA-3')",
            "States.Hash($.n, 'MD5')",
            "States.Hash('abc')",
        ] {
            let failure = run(bad, json!({"n": 1})).unwrap_err();
            assert_eq!(failure.error, "States.IntrinsicFailure", "{bad}");
        }
        let long = "x".repeat(10_001);
        assert!(run("States.Hash($.d, 'MD5')", json!({ "d": long })).is_err());
    }

    #[test]
    fn format_interpolates_and_honours_escapes() {
        assert_eq!(
            run(
                "States.Format('Hello, {}! {} \\{\\} it\\'s', $.name, $.n)",
                json!({"name": "Ann", "n": [1]})
            )
            .unwrap(),
            json!("Hello, Ann! [1] {} it's")
        );
        assert!(run("States.Format('{} {}', $.a)", json!({"a": 1})).is_err());
    }

    #[test]
    fn nested_calls_and_common_functions_work() {
        let input = json!({"a": {"x": 1}, "b": {"y": 2}, "list": [1, 2, 2, 3]});
        assert_eq!(
            run(
                "States.JsonMerge(States.JsonMerge($.a, $.b, false), $.a, false)",
                input.clone()
            )
            .unwrap(),
            json!({"x": 1, "y": 2})
        );
        assert_eq!(
            run("States.ArrayUnique($.list)", input.clone()).unwrap(),
            json!([1, 2, 3])
        );
        assert_eq!(
            run("States.ArrayLength($.list)", input.clone()).unwrap(),
            json!(4)
        );
        assert_eq!(
            run("States.ArrayGetItem($.list, 3)", input.clone()).unwrap(),
            json!(3)
        );
        assert_eq!(
            run("States.ArrayPartition($.list, 3)", input.clone()).unwrap(),
            json!([[1, 2, 2], [3]])
        );
        assert_eq!(
            run("States.ArrayRange(1, 9, 4)", input.clone()).unwrap(),
            json!([1, 5, 9])
        );
        assert_eq!(
            run("States.MathAdd(40, -2)", input.clone()).unwrap(),
            json!(38)
        );
        assert_eq!(
            run("States.StringToJson('{\"k\": [1]}')", input.clone()).unwrap(),
            json!({"k": [1]})
        );
        assert_eq!(
            run("States.JsonToString($.a)", input.clone()).unwrap(),
            json!("{\"x\":1}")
        );
        assert_eq!(
            run("States.Array(1, 'two', $.a)", input.clone()).unwrap(),
            json!([1, "two", {"x": 1}])
        );
        assert_eq!(
            run("States.StringSplit('a,b;;c', ',;')", input.clone()).unwrap(),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            run(
                "States.Base64Decode(States.Base64Encode('hé'))",
                input.clone()
            )
            .unwrap(),
            json!("hé")
        );
        assert_eq!(
            run("States.ArrayContains($.list, 3)", input).unwrap(),
            json!(true)
        );
        assert_eq!(
            run("States.UUID()", json!({}))
                .unwrap()
                .as_str()
                .map(str::len),
            Some(36)
        );
    }

    #[test]
    fn bad_calls_are_refused_with_the_place() {
        assert!(
            parse("States.Nope(1)")
                .unwrap_err()
                .contains("not an intrinsic")
        );
        assert!(parse("States.Format('a'").is_err());
        assert_eq!(
            run("States.MathAdd('a', 1)", json!({})).unwrap_err().error,
            "States.IntrinsicFailure"
        );
    }
}
