import { describe, expect, it } from "vitest";
import { escapeHtml, parse, safeHref, toHtml } from "./markdown";

describe("markdown-lite", () => {
  it("parses bold, italic, code and links", () => {
    expect(parse("a **b** *c* _d_ `e`")).toEqual([
      { kind: "text", text: "a " },
      { kind: "bold", children: [{ kind: "text", text: "b" }] },
      { kind: "text", text: " " },
      { kind: "italic", children: [{ kind: "text", text: "c" }] },
      { kind: "text", text: " " },
      { kind: "italic", children: [{ kind: "text", text: "d" }] },
      { kind: "text", text: " " },
      { kind: "code", text: "e" },
    ]);
    expect(parse("see https://example.org/x.")).toEqual([
      { kind: "text", text: "see " },
      { kind: "link", href: "https://example.org/x", children: [{ kind: "text", text: "https://example.org/x" }] },
      { kind: "text", text: "." },
    ]);
    expect(parse("[site](https://a.example)")[0]).toMatchObject({ kind: "link", href: "https://a.example" });
  });

  it("leaves snake_case and lone markers alone", () => {
    expect(parse("snake_case_name")).toEqual([{ kind: "text", text: "snake_case_name" }]);
    expect(parse("2 * 3 * 4")).toEqual([{ kind: "text", text: "2 * 3 * 4" }]);
    expect(parse("`unclosed")).toEqual([{ kind: "text", text: "`unclosed" }]);
  });

  it("does not interpret markup inside code", () => {
    expect(parse("`**not bold**`")).toEqual([{ kind: "code", text: "**not bold**" }]);
  });

  it("refuses links with unsafe schemes", () => {
    expect(safeHref("javascript:alert(1)")).toBeUndefined();
    expect(safeHref(" JaVaScRiPt:alert(1)")).toBeUndefined();
    expect(safeHref("data:text/html,<script>")).toBeUndefined();
    const tokens = parse("[click](javascript:alert(1))");
    expect(tokens.every((t) => t.kind === "text")).toBe(true);
  });

  it("escapes HTML in every token when rendering formatted_body", () => {
    const html = toHtml(parse('<img src=x onerror=alert(1)> **<b>"x"</b>** `<script>` [<i>](https://e.example/?a="b")'));
    expect(html).not.toMatch(/<img|<script|<b>|<i>/);
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(html).toContain("<strong>&lt;b&gt;&quot;x&quot;&lt;/b&gt;</strong>");
    expect(html).toContain("<code>&lt;script&gt;</code>");
    expect(html).toContain('href="https://e.example/?a=&quot;b&quot;"');
    expect(escapeHtml(`&<>"'`)).toBe("&amp;&lt;&gt;&quot;&#39;");
  });

  it("terminates on pathological nesting", () => {
    const src = "**".repeat(500) + "*_".repeat(500);
    expect(() => parse(src)).not.toThrow();
  });
});
