"""The slice of SOQL synchub's Salesforce mock understands.

  SELECT f, g, Account.Name FROM Contact
    [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]
  cond: comparisons (= != <> < <= > >= LIKE IN NOT IN), AND, OR, NOT, parentheses.
  Literals: 'strings', numbers, true/false/null, datetimes
  (2024-01-01T00:00:00Z, ...000+0000, +01:00) and dates (2024-01-01).
Errors raise SoqlError(errorCode, message) like Salesforce's MALFORMED_QUERY
and INVALID_FIELD.
"""

import re

from providers.common import parse_time

TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:\\.|[^'\\])*')
  | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
)""", re.X)

KEYWORDS = {"select", "from", "where", "and", "or", "not", "order", "by", "asc", "desc",
            "nulls", "first", "last", "limit", "offset", "in", "like", "true", "false", "null"}


class SoqlError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def tokenize(q):
    pos, out = 0, []
    q = q.rstrip()
    while pos < len(q):
        m = TOKEN.match(q, pos)
        if not m or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % q[pos:pos + 20].strip())
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "dt" and not re.search(r"(Z|[+-]\d{2}:?\d{2})$", text):
            raise SoqlError("MALFORMED_QUERY", "line 1:%d no viable alternative at character ' '" % pos)
        out.append((kind, text))
        pos = m.end()
    return out


class Query:
    def __init__(self):
        self.fields = []      # canonical names, SELECT order
        self.where = None     # predicate(get) or None
        self.order = []       # (field, desc, nulls_last)
        self.limit = None
        self.offset = 0


class Parser:
    """`fields` maps lower-case name -> canonical name; `types` canonical -> kind."""

    def __init__(self, q, fields, types):
        self.toks = tokenize(q)
        self.i = 0
        self.fields = fields
        self.types = types

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None)

    def kw(self, word):
        kind, text = self.peek()
        if kind == "word" and text.lower() == word:
            self.i += 1
            return True
        return False

    def expect_kw(self, word):
        if not self.kw(word):
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (self.peek()[1] or "<EOF>"))

    def field(self):
        kind, text = self.peek()
        if kind != "word" or text.lower() in KEYWORDS:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (text or "<EOF>"))
        self.i += 1
        canon = self.fields.get(text.lower())
        if canon is None:
            raise SoqlError("INVALID_FIELD", "No such column '%s' on entity 'Contact'. If you are "
                            "attempting to use a custom field, be sure to append the '__c' after "
                            "the custom field name." % text)
        return canon

    def parse(self):
        qry = Query()
        self.expect_kw("select")
        qry.fields.append(self.field())
        while self.peek() == ("punct", ","):
            self.i += 1
            qry.fields.append(self.field())
        self.expect_kw("from")
        kind, text = self.peek()
        if kind != "word" or text.lower() != "contact":
            raise SoqlError("INVALID_TYPE", "sObject type '%s' is not supported." % text)
        self.i += 1
        if self.kw("where"):
            qry.where = self.expr()
        if self.kw("order"):
            self.expect_kw("by")
            while True:
                f = self.field()
                desc = self.kw("desc") or (self.kw("asc") and False)
                nulls_last = desc
                if self.kw("nulls"):
                    nulls_last = self.kw("last") or not self.kw("first")
                qry.order.append((f, desc, nulls_last))
                if self.peek() != ("punct", ","):
                    break
                self.i += 1
        if self.kw("limit"):
            qry.limit = self.number()
        if self.kw("offset"):
            qry.offset = self.number()
        if self.i != len(self.toks):
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % self.peek()[1])
        return qry

    def number(self):
        kind, text = self.peek()
        if kind != "num":
            raise SoqlError("MALFORMED_QUERY", "expected a number")
        self.i += 1
        return int(text)

    def expr(self):
        left = self.term()
        while self.kw("or"):
            right = self.term()
            left = (lambda a, b: lambda g: a(g) or b(g))(left, right)
        return left

    def term(self):
        left = self.factor()
        while self.kw("and"):
            right = self.factor()
            left = (lambda a, b: lambda g: a(g) and b(g))(left, right)
        return left

    def factor(self):
        if self.kw("not"):
            inner = self.factor()
            return lambda g: not inner(g)
        if self.peek() == ("punct", "("):
            self.i += 1
            inner = self.expr()
            if self.peek() != ("punct", ")"):
                raise SoqlError("MALFORMED_QUERY", "expected ')'")
            self.i += 1
            return inner
        f = self.field()
        neg = self.kw("not")
        if self.kw("in"):
            vals = self.value_list(f)
            return lambda g: (g(f) in vals) != neg
        if neg:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: 'NOT'")
        if self.kw("like"):
            pat = self.value(f)
            rx = re.compile("^" + re.escape(pat).replace("%", ".*").replace("_", ".") + "$", re.I)
            return lambda g: g(f) is not None and bool(rx.match(str(g(f))))
        kind, op = self.peek()
        if kind != "op":
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (op or "<EOF>"))
        self.i += 1
        v = self.value(f)
        return compare(f, op, v)

    def value_list(self, f):
        if self.peek() != ("punct", "("):
            raise SoqlError("MALFORMED_QUERY", "expected '('")
        self.i += 1
        vals = {self.value(f)}
        while self.peek() == ("punct", ","):
            self.i += 1
            vals.add(self.value(f))
        if self.peek() != ("punct", ")"):
            raise SoqlError("MALFORMED_QUERY", "expected ')'")
        self.i += 1
        return vals

    def value(self, f):
        kind, text = self.peek()
        self.i += 1
        ftype = self.types.get(f, "string")
        if kind == "word" and text.lower() == "null":
            return None
        if ftype == "datetime":
            if kind == "dt":
                return parse_time(text)
            if kind == "str":
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR",
                                "value of filter criterion for field '%s' must be of type dateTime "
                                "and should not be enclosed in quotes" % f)
            raise SoqlError("MALFORMED_QUERY", "invalid dateTime value: %s" % text)
        if ftype == "boolean":
            if kind == "word" and text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", "value for '%s' must be true or false" % f)
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        raise SoqlError("INVALID_QUERY_FILTER_OPERATOR",
                        "value of filter criterion for field '%s' must be of type string and "
                        "should be enclosed in quotes" % f)


def compare(f, op, v):
    if op == "=":
        return lambda g: g(f) == v
    if op in ("!=", "<>"):
        return lambda g: g(f) != v
    fn = {"<": lambda a: a < v, "<=": lambda a: a <= v,
          ">": lambda a: a > v, ">=": lambda a: a >= v}[op]
    return lambda g: (lambda a: a is not None and v is not None and fn(a))(g(f))


def parse(q, fields, types):
    return Parser(q, fields, types).parse()
