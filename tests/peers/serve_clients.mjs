// Hugging Face's own JavaScript inference client (@huggingface/inference, tests/peers/node_modules)
// pointed at a running `recmodel serve` as at an Inference Endpoint, unchanged:
//   node serve_clients.mjs URL
// With endpointUrl the client POSTs {"inputs": TEXT} to the URL itself (POST /) and reads the
// first element of the list it gets back (HFInferenceTextClassificationTask.getResponse), so the
// server's POST / must answer [[{label, score}, ...]]. Checked for the three ways to name the
// endpoint (textClassification({endpointUrl}), new InferenceClient("", {endpointUrl}),
// new InferenceClient().endpoint(URL)): labels and scores equal to POST /predict's answer for the
// same text; the request the client sent (URL, method, body) is recorded through its `fetch`
// option; and a refused input surfaces as the client's InferenceClientProviderApiError carrying
// the server's {"error"} message and status. Prints "ok ..." lines; exits 1 on the first failure.
import { InferenceClient, InferenceClientProviderApiError, textClassification } from "@huggingface/inference";

const url = process.argv[2];
if (!url) {
  console.error("usage: node serve_clients.mjs URL");
  process.exit(2);
}
const fail = (message) => {
  console.error(`FAIL: ${message}`);
  process.exit(1);
};

const texts = [
  "i was charged twice and want my money back",
  "where is my parcel? it has been two weeks",
  "Ünïcödé and emoji 📦 in a refund request",
];

async function predict(text) {
  const response = await fetch(`${url}/predict`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ inputs: text }),
  });
  if (response.status !== 200) fail(`POST /predict answered ${response.status}: ${await response.text()}`);
  return response.json();
}

function same(got, want, what) {
  if (!Array.isArray(got) || got.length !== want.length)
    fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  got.forEach((g, i) => {
    if (g.label !== want[i].label || Math.abs(g.score - want[i].score) > 1e-5)
      fail(`${what}: element ${i} is ${JSON.stringify(g)}, POST /predict says ${JSON.stringify(want[i])}`);
  });
}

// Records what the client sends, then sends it.
const sent = [];
const recordingFetch = async (input, init) => {
  sent.push({ url: String(input), method: init?.method, body: init?.body, headers: init?.headers });
  return fetch(input, init);
};

const ways = {
  "textClassification({endpointUrl})": (inputs) =>
    textClassification({ endpointUrl: url, inputs }, { fetch: recordingFetch }),
  'new InferenceClient("", {endpointUrl})': (inputs) =>
    new InferenceClient("", { endpointUrl: url, fetch: recordingFetch }).textClassification({ inputs }),
  "new InferenceClient().endpoint(URL)": (inputs) =>
    new InferenceClient("", { fetch: recordingFetch }).endpoint(url).textClassification({ inputs }),
};

for (const [way, classify] of Object.entries(ways)) {
  for (const text of texts) {
    sent.length = 0;
    const got = await classify(text);
    if (sent.length !== 1) fail(`${way}: the client made ${sent.length} requests, not 1`);
    const request = sent[0];
    if (request.url !== url || request.method !== "POST")
      fail(`${way}: the client sent ${request.method} ${request.url}, expected POST ${url}`);
    const body = JSON.parse(request.body);
    if (JSON.stringify(body) !== JSON.stringify({ inputs: text }))
      fail(`${way}: the client sent the body ${request.body}`);
    same(got, await predict(text), `${way} on ${JSON.stringify(text)}`);
  }
  console.log(`ok ${way}: POST ${url} {"inputs": TEXT} -> the same labels and scores as /predict (${texts.length} texts)`);
}

// A refused input: the client throws its API error with the server's message and status.
try {
  await textClassification({ endpointUrl: url, inputs: "" }, { fetch: recordingFetch });
  fail("an empty text was not refused");
} catch (e) {
  if (!(e instanceof InferenceClientProviderApiError)) fail(`an empty text raised ${e?.name}: ${e?.message}`);
  const status = e.httpResponse?.status;
  if (status !== 400 && status !== 422) fail(`an empty text gave status ${status}`);
  if (typeof e.httpResponse?.body?.error !== "string" || !e.message.includes(e.httpResponse.body.error))
    fail(`the client's error does not carry the server's message: ${e.message} / ${JSON.stringify(e.httpResponse?.body)}`);
  console.log(`ok an empty text: ${e.name} (${status}): ${e.message}`);
}
