// Authenticated media (spec/media.md): download paths, fetched as blobs with
// the Authorization header and shown or saved through object URLs.
import type { Http } from "./http";

export function parseMxc(mxc: string): { server: string; mediaId: string } | undefined {
  const m = /^mxc:\/\/([A-Za-z0-9.\-:[\]]+)\/([A-Za-z0-9_-]+)$/.exec(mxc);
  return m ? { server: m[1]!, mediaId: m[2]! } : undefined;
}

/** The authenticated download path of an mxc URI, served under `fileName` if given. */
export function downloadPath(mxc: string, fileName?: string): string | undefined {
  const p = parseMxc(mxc);
  if (!p) return undefined;
  const base = `/_matrix/client/v1/media/download/${encodeURIComponent(p.server)}/${encodeURIComponent(p.mediaId)}`;
  const name = fileName ? safeFileName(fileName) : "";
  return name ? `${base}/${encodeURIComponent(name)}` : base;
}

/** A file name without path parts or control characters, for the `download` attribute. */
export function safeFileName(name: string): string {
  const last = name.split(/[/\\]/).pop() ?? "";
  const clean = last.replace(/[\u0000-\u001f\u007f]/g, "").trim();
  return clean === "." || clean === ".." ? "" : clean.slice(0, 255);
}

export function humanSize(bytes: unknown): string {
  if (typeof bytes !== "number" || !Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export async function downloadBlob(http: Http, mxc: string, fileName?: string): Promise<Blob> {
  const path = downloadPath(mxc, fileName);
  if (!path) throw new Error("not an mxc URI");
  return http.blob(path);
}

/** Save a blob under a file name through a temporary object URL. */
export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = safeFileName(fileName) || "download";
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
