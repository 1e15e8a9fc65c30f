import { useState, type FormEvent } from "react";
import { useStore } from "../store";

export function Login() {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const error = useStore((s) => s.error);
  const { login, register, setError } = useStore.getState();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    await (mode === "login" ? login(user.trim(), password) : register(user.trim(), password));
    setBusy(false);
  }

  return (
    <main className="login">
      <form onSubmit={submit} className="card" aria-label={mode === "login" ? "Log in" : "Register"}>
        <h1>Plait</h1>
        <div className="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={mode === "login"} onClick={() => setMode("login")}>
            Log in
          </button>
          <button type="button" role="tab" aria-selected={mode === "register"} onClick={() => setMode("register")}>
            Register
          </button>
        </div>
        <label>
          Username
          <input name="username" autoComplete="username" value={user} onChange={(e) => setUser(e.target.value)} required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {mode === "login" ? "Log in" : "Create account"}
        </button>
      </form>
    </main>
  );
}
