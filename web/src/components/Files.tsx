// Files in messages: a download link for m.file (authenticated media is
// fetched with the Authorization header and saved through an object URL), and
// the full image behind a thumbnail.
import { useEffect, useState } from "react";
import { downloadBlob, humanSize, saveBlob } from "../matrix/media";
import type { ViewItem } from "../matrix/view";
import { getClient } from "../store";

function fileName(content: Record<string, unknown>): string {
  const f = content["filename"];
  if (typeof f === "string" && f) return f;
  const b = content["body"];
  return typeof b === "string" && b ? b : "file";
}

export function FileBody({ v }: { v: ViewItem }) {
  const c = v.content;
  const url = typeof c["url"] === "string" ? c["url"] : undefined;
  const info = (c["info"] && typeof c["info"] === "object" ? c["info"] : {}) as Record<string, unknown>;
  const name = fileName(c);
  const size = humanSize(info["size"]);
  const [state, setState] = useState<"idle" | "busy" | "failed">("idle");

  async function download() {
    const client = getClient();
    if (!client || !url) return;
    setState("busy");
    try {
      saveBlob(await downloadBlob(client.http, url, name), name);
      setState("idle");
    } catch {
      setState("failed");
    }
  }

  return (
    <span className="file" data-testid="file">
      <svg className="file-icon" style={{ flex: "none" }} width="22" height="22" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
        <path d="M14 3H6a1 1 0 0 0-1 1v16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8z" />
        <path d="M14 3v5h5" />
      </svg>
      <span className="file-meta">
        <span className="file-name">{name}</span>
        {size && <small className="muted"> {size}</small>}
      </span>
      {url ? (
        <button className="link" onClick={() => void download()} disabled={state === "busy"} aria-label={`Download ${name}`}>
          {state === "busy" ? "Downloading…" : state === "failed" ? "Retry download" : "Download"}
        </button>
      ) : v.item.progress !== undefined && v.item.progress < 1 ? (
        <progress value={v.item.progress} max={1} aria-label="Upload progress" />
      ) : (
        <small className="muted">Uploading…</small>
      )}
    </span>
  );
}

/** "Full image": the original, fetched with auth and shown over the app. */
export function FullImageLink({ mxc, name }: { mxc: string; name: string }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button className="link full-image-link" onClick={() => setOpen(true)}>
        Full image
      </button>
      {open && <Lightbox mxc={mxc} name={name} onClose={() => setOpen(false)} />}
    </>
  );
}

function Lightbox({ mxc, name, onClose }: { mxc: string; name: string; onClose: () => void }) {
  const [src, setSrc] = useState<string | undefined>();
  const [blob, setBlob] = useState<Blob | undefined>();
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    let objectUrl: string | undefined;
    const client = getClient();
    if (!client) return;
    downloadBlob(client.http, mxc, name)
      .then((b) => {
        if (!live) return;
        objectUrl = URL.createObjectURL(b);
        setBlob(b);
        setSrc(objectUrl);
      })
      .catch(() => live && setFailed(true));
    return () => {
      live = false;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [mxc, name]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    globalThis.addEventListener("keydown", onKey);
    return () => globalThis.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="backdrop" onClick={onClose}>
      <div className="lightbox" role="dialog" aria-label={name} onClick={(e) => e.stopPropagation()}>
        {src ? (
          <img src={src} alt={name} data-testid="full-image" />
        ) : (
          <p className="muted">{failed ? "Image unavailable" : "Loading image…"}</p>
        )}
        <div className="buttons">
          {blob && <button onClick={() => saveBlob(blob, name)}>Download</button>}
          <button className="primary" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </div>
  );
}
