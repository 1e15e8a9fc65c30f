// Markdown-lite: `code`, **bold**, *italic* / _italic_, [text](url) and bare
// http(s) links. Parsed into tokens that React renders as text nodes, so a
// message body can never inject HTML; `toHtml` escapes everything it emits.

export type Token =
  | { kind: "text"; text: string }
  | { kind: "code"; text: string }
  | { kind: "bold"; children: Token[] }
  | { kind: "italic"; children: Token[] }
  | { kind: "link"; href: string; children: Token[] };

const SAFE_SCHEME = /^(https?:\/\/|mailto:)/i;

export function safeHref(url: string): string | undefined {
  return SAFE_SCHEME.test(url.trim()) ? url.trim() : undefined;
}

export function parse(src: string, depth = 0): Token[] {
  const out: Token[] = [];
  let text = "";
  const flush = () => {
    if (text) out.push({ kind: "text", text });
    text = "";
  };
  let i = 0;
  while (i < src.length) {
    const rest = src.slice(i);
    const ch = src[i]!;
    if (ch === "`") {
      const end = src.indexOf("`", i + 1);
      if (end > i + 1) {
        flush();
        out.push({ kind: "code", text: src.slice(i + 1, end) });
        i = end + 1;
        continue;
      }
    }
    if (depth < 4 && rest.startsWith("**")) {
      const end = src.indexOf("**", i + 2);
      if (end > i + 2) {
        flush();
        out.push({ kind: "bold", children: parse(src.slice(i + 2, end), depth + 1) });
        i = end + 2;
        continue;
      }
    }
    if (depth < 4 && (ch === "*" || ch === "_") && src[i + 1] !== ch && src[i + 1] !== " ") {
      const prev = i > 0 ? src[i - 1]! : " ";
      const end = src.indexOf(ch, i + 1);
      // `_` inside words (snake_case) is not emphasis.
      if (end > i + 1 && (ch === "*" || !/\w/.test(prev)) && src[end - 1] !== " ") {
        flush();
        out.push({ kind: "italic", children: parse(src.slice(i + 1, end), depth + 1) });
        i = end + 1;
        continue;
      }
    }
    if (ch === "[") {
      const m = /^\[([^\]\n]+)\]\(([^)\s]+)\)/.exec(rest);
      const href = m ? safeHref(m[2]!) : undefined;
      if (m && href) {
        flush();
        out.push({ kind: "link", href, children: parse(m[1]!, depth + 1) });
        i += m[0].length;
        continue;
      }
    }
    if (ch === "h" || ch === "H") {
      const m = /^https?:\/\/[^\s<>"]+/i.exec(rest);
      if (m && !/\w/.test(i > 0 ? src[i - 1]! : " ")) {
        const url = m[0].replace(/[.,;:!?)]+$/, "");
        flush();
        out.push({ kind: "link", href: url, children: [{ kind: "text", text: url }] });
        i += url.length;
        continue;
      }
    }
    text += ch;
    i++;
  }
  flush();
  return out;
}

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

export function toHtml(tokens: Token[]): string {
  return tokens
    .map((t) => {
      switch (t.kind) {
        case "text":
          return escapeHtml(t.text).replace(/\n/g, "<br>");
        case "code":
          return `<code>${escapeHtml(t.text)}</code>`;
        case "bold":
          return `<strong>${toHtml(t.children)}</strong>`;
        case "italic":
          return `<em>${toHtml(t.children)}</em>`;
        case "link":
          return `<a href="${escapeHtml(t.href)}">${toHtml(t.children)}</a>`;
      }
    })
    .join("");
}

/** True when the body has any markup worth a formatted_body. */
export function hasMarkup(tokens: Token[]): boolean {
  return tokens.some((t) => t.kind !== "text");
}
