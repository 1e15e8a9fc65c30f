import { describe, expect, it } from "vitest";
import { Http } from "./http";
import { downloadBlob, downloadPath, humanSize, parseMxc, safeFileName } from "./media";

describe("media", () => {
  it("builds authenticated download paths", () => {
    expect(parseMxc("mxc://localhost:8008/abc_DEF-1")).toEqual({ server: "localhost:8008", mediaId: "abc_DEF-1" });
    expect(parseMxc("https://evil/x")).toBeUndefined();
    expect(parseMxc("mxc://s/../etc")).toBeUndefined();
    expect(downloadPath("mxc://example.org/AbC123")).toBe("/_matrix/client/v1/media/download/example.org/AbC123");
    expect(downloadPath("mxc://example.org/AbC123", "my notes.txt")).toBe(
      "/_matrix/client/v1/media/download/example.org/AbC123/my%20notes.txt",
    );
    expect(downloadPath("mxc://example.org/AbC123", "../../x?y#z")).toBe("/_matrix/client/v1/media/download/example.org/AbC123/x%3Fy%23z");
    expect(downloadPath("not-mxc")).toBeUndefined();
  });

  it("cleans file names and prints sizes", () => {
    expect(safeFileName("a/b\\c\u0000d.txt")).toBe("cd.txt");
    expect(safeFileName("..")).toBe("");
    expect(humanSize(12)).toBe("12 B");
    expect(humanSize(1536)).toBe("1.5 KB");
    expect(humanSize(50 * 1024 * 1024)).toBe("50 MB");
    expect(humanSize(undefined)).toBe("");
  });

  it("downloads with the Authorization header", async () => {
    const seen: { url: string; auth: string | null }[] = [];
    const http = new Http("http://hs.test", ((input: RequestInfo | URL, init: RequestInit = {}) => {
      seen.push({ url: String(input), auth: new Headers(init.headers).get("Authorization") });
      return Promise.resolve(new Response("file bytes", { status: 200 }));
    }) as typeof fetch);
    http.session = { userId: "@me:s", deviceId: "D", accessToken: "tok" };
    const blob = await downloadBlob(http, "mxc://hs.test/M1", "notes.txt");
    expect(await blob.text()).toBe("file bytes");
    expect(seen).toEqual([{ url: "http://hs.test/_matrix/client/v1/media/download/hs.test/M1/notes.txt", auth: "Bearer tok" }]);
  });
});
