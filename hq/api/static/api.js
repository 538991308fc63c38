// Calls to HQ's API with the operator's bearer token.

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  async get(path, params = {}) {
    const query = new URLSearchParams(params).toString();
    const response = await fetch(`${API}${path}${query ? `?${query}` : ""}`, {
      headers: this.headers({ Accept: "application/json" }),
    });
    return body(response);
  }

  async post(path) {
    const response = await fetch(`${API}${path}`, {
      method: "POST",
      headers: this.headers({ Accept: "application/json" }),
    });
    return body(response);
  }
}

// The JSON body of a successful response; otherwise an ApiError carrying the API's own words.
async function body(response) {
  if (response.ok) return response.json();
  let detail = response.statusText;
  try {
    detail = (await response.json()).detail || detail;
  } catch {
    // not JSON (a proxy's error page): the status text will do
  }
  throw new ApiError(response.status, detail);
}
