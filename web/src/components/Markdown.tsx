import type { ReactNode } from "react";
import { parse, type Token } from "../matrix/markdown";

function render(tokens: Token[], keyPrefix: string): ReactNode[] {
  return tokens.map((t, i) => {
    const key = `${keyPrefix}${i}`;
    switch (t.kind) {
      case "text":
        return <span key={key}>{t.text}</span>;
      case "code":
        return <code key={key}>{t.text}</code>;
      case "bold":
        return <strong key={key}>{render(t.children, key + ".")}</strong>;
      case "italic":
        return <em key={key}>{render(t.children, key + ".")}</em>;
      case "link":
        return (
          <a key={key} href={t.href} target="_blank" rel="noopener noreferrer nofollow">
            {render(t.children, key + ".")}
          </a>
        );
    }
  });
}

/** A message body with markdown-lite applied; text only, never raw HTML. */
export function Markdown({ text }: { text: string }) {
  return <>{render(parse(text), "m")}</>;
}
