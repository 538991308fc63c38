// Loading a browser package that HQ serves as one classic script (it defines a global).

// The global `name` once `src` has run; null when HQ does not serve `src` (the page then
// works without it).
export async function loadScript(src, name) {
  if (window[name]) return window[name];
  const served = await fetch(src, { method: "HEAD" }).then((r) => r.ok, () => false);
  if (!served) return null;
  await new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`${src} did not load`));
    document.head.appendChild(script);
  });
  return window[name];
}
