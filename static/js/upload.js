// Upload page: drag and drop, the frame slider's value, and checks before sending.
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("id_files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("file-list");
  const error = document.getElementById("client-error");
  const slider = document.getElementById("id_frames");
  const output = document.getElementById("frames-value");
  const maxBytes = Number(form.dataset.maxMb) * 1024 * 1024;
  const extensions = /\.(jpe?g|png|webp|bmp|tiff?|gif|mp4|m4v|mov|mkv|webm|avi|mpe?g|wmv|flv|3gp)$/i;

  slider.addEventListener("input", () => { output.textContent = slider.value; });

  function problems(files) {
    const found = [];
    for (const file of files) {
      const typed = file.type.startsWith("image/") || file.type.startsWith("video/");
      if (!typed && !extensions.test(file.name)) found.push(`“${file.name}” is not a photo or video.`);
      else if (file.size === 0) found.push(`“${file.name}” is empty.`);
      else if (file.size > maxBytes) found.push(`“${file.name}” is larger than ${form.dataset.maxMb} MB.`);
    }
    return found;
  }

  function show(files) {
    list.replaceChildren(...Array.from(files).map((file) => {
      const item = document.createElement("li");
      const kind = file.type.startsWith("video/") ? "video" : file.type.startsWith("image/") ? "photo" : "file";
      item.textContent = `${file.name} · ${kind} · ${(file.size / 1048576).toFixed(1)} MB`;
      return item;
    }));
    const found = problems(files);
    error.hidden = found.length === 0;
    error.textContent = found.join(" ");
  }

  input.addEventListener("change", () => show(input.files));
  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    input.files = event.dataTransfer.files;
    show(input.files);
  });
  form.addEventListener("submit", (event) => {
    const found = input.files.length ? problems(input.files) : ["Choose at least one photo or video."];
    if (found.length) {
      event.preventDefault();
      error.hidden = false;
      error.textContent = found.join(" ");
      return;
    }
    const button = document.getElementById("submit");
    button.disabled = true;
    button.textContent = "Uploading…";
  });
})();
