//! Field paths into an object being checked, built without allocating until
//! an error needs one.

use std::fmt;

/// One step of a path.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A field of an object.
    Field(&'a str),
    /// An item of a list.
    Index(usize),
    /// An entry of a map (labels, data).
    Key(&'a str),
}

/// A field path as a chain of steps from the object root: `Path::root()`,
/// then `.field("spec").field("ports").index(1)`.
#[derive(Debug, Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Option<Step<'a>>,
}

impl<'a> Path<'a> {
    /// The object itself.
    pub fn root() -> Path<'static> {
        Path {
            parent: None,
            step: None,
        }
    }

    /// A field below this path.
    pub fn field(&'a self, name: &'a str) -> Path<'a> {
        self.push(Step::Field(name))
    }

    /// A list item below this path.
    pub fn index(&'a self, i: usize) -> Path<'a> {
        self.push(Step::Index(i))
    }

    /// A map entry below this path.
    pub fn key(&'a self, k: &'a str) -> Path<'a> {
        self.push(Step::Key(k))
    }

    fn push(&'a self, step: Step<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            step: Some(step),
        }
    }

    fn steps(&self) -> Vec<Step<'a>> {
        let mut v = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            if let Some(s) = p.step {
                v.push(s);
            }
            cur = p.parent;
        }
        v.reverse();
        v
    }

    /// The JSON pointer (RFC 6901) of this path, for finding its source.
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        for s in self.steps() {
            out.push('/');
            match s {
                Step::Field(f) | Step::Key(f) => {
                    out.push_str(&f.replace('~', "~0").replace('/', "~1"))
                }
                Step::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }
}

/// The path as the API server prints it:
/// `spec.template.spec.containers[0].env[1].name`, map keys in brackets.
impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.steps() {
            match s {
                Step::Field(name) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::Key(k) => write!(f, "[{k}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// Convert a JSON pointer to the API server's dotted form.
pub fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for t in pointer.split('/').skip(1) {
        let t = t.replace("~1", "/").replace("~0", "~");
        if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
            out.push_str(&format!("[{t}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_pointer_and_as_the_server_does() {
        let root = Path::root();
        let spec = root.field("spec");
        let c = spec.field("containers");
        let c0 = c.index(0);
        let name = c0.field("name");
        assert_eq!(name.pointer(), "/spec/containers/0/name");
        assert_eq!(name.to_string(), "spec.containers[0].name");
        let meta = root.field("metadata");
        let labels = meta.field("labels");
        let k = labels.key("app.kubernetes.io/name");
        assert_eq!(k.pointer(), "/metadata/labels/app.kubernetes.io~1name");
        assert_eq!(k.to_string(), "metadata.labels[app.kubernetes.io/name]");
        assert_eq!(dotted("/spec/ports/1/name"), "spec.ports[1].name");
    }
}
