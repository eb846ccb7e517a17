// plotly-loader.js — plotly.js (1.5 MB minified, served from the installed package at /vendor/plotly.min.js) is
// loaded when a chart is first drawn, not with the page: the U is drawn without waiting for it (issue 24). A
// classic script that defines the Plotly global, inserted once; every chart awaits the same promise.

// The page says where it is: the server's route, or a static site's own copy (a relative address).
const URL = document.querySelector('meta[name="sdunet-plotly"]')?.content || '/vendor/plotly.min.js';
let loading = null;

/** Plotly, loaded on first call. A failed load is tried again by the next call. */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = URL;
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => {
      loading = null;
      script.remove();
      reject(new Error('plotly.js could not be loaded'));
    };
    document.head.append(script);
  });
  return loading;
}
