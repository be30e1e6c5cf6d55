std = "lua54"
max_line_length = 110
codes = true
exclude_files = { ".deps/**", "build/**", "build-asan/**", ".rocks/**" }
files["spec/**/*.lua"] = { std = "+busted" }
files["bench/**/*.lua"] = { std = "+lua54" }
