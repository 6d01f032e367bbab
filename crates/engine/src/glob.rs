//! Go's `path.Match` globs, as Docker's `reference` filter uses them.

/// Whether `name` matches `pattern`: `*` is any run of characters but `/`,
/// `?` one character but `/`, `[abc]`/`[a-z]`/`[^a]` a class, `\x` a literal.
/// A malformed pattern matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            for i in 0..=n.len() {
                if matches(rest, &n[i..]) {
                    return true;
                }
                if i < n.len() && n[i] == '/' {
                    return false;
                }
            }
            false
        }
        Some('?') => n.first().is_some_and(|c| *c != '/') && matches(&p[1..], &n[1..]),
        Some('[') => {
            let Some(c) = n.first() else { return false };
            match class(&p[1..], *c) {
                Some((true, used)) => matches(&p[1 + used..], &n[1..]),
                _ => false,
            }
        }
        Some('\\') => {
            p.get(1).is_some_and(|lit| n.first() == Some(lit)) && matches(&p[2..], &n[1..])
        }
        Some(lit) => n.first() == Some(lit) && matches(&p[1..], &n[1..]),
    }
}

/// Match `c` against a class body (after `[`): whether it matched, and how
/// many pattern characters the class used including `]`. `None` if unclosed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((found != negated && c != '/', i + 1));
        }
        first = false;
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|h| *h != ']') {
            let hi = p[i + 1];
            found |= lo <= c && c <= hi;
            i += 2;
        } else {
            found |= lo == c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_gos_path_match() {
        assert!(glob_match("py*", "python:3.10"));
        assert!(glob_match("busybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
        assert!(!glob_match("*", "user/app"));
        assert!(glob_match("*/app", "user/app"));
        assert!(glob_match("a?c:[0-9]", "abc:1"));
        assert!(!glob_match("a[^b]c", "abc"));
        assert!(!glob_match("[ab", "a"));
    }
}
